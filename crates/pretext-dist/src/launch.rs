//! Where this process sits in a multi-process launch, from the launcher's environment:
//! torchrun's `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT` (and
//! `TORCHELASTIC_USE_AGENT_STORE`), else SLURM's `SLURM_PROCID`, `SLURM_NTASKS`,
//! `SLURM_LOCALID` and the first host of the step's node list. Neither = one process.

use std::str::FromStr;

use crate::DistError;

/// The port rank 0's TCPStore listens on under SLURM when `MASTER_PORT` is unset
/// (torchrun's and PyTorch's default too). Two jobs sharing a node need distinct ports.
pub const DEFAULT_MASTER_PORT: u16 = 29500;

/// The most host names [`slurm_hosts`] expands one node list to.
const MAX_HOSTS: usize = 1 << 20;

/// Where this process sits in a multi-process launch (torchrun or SLURM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// This process's index among all processes, `0..world_size`.
    pub rank: usize,
    /// How many processes take part.
    pub world_size: usize,
    /// This process's index on its machine: the CUDA device it drives.
    pub local_rank: usize,
    /// The host of the TCPStore every rank meets at.
    pub master_addr: String,
    /// The port of that TCPStore.
    pub master_port: u16,
    /// torchrun's agent hosts the TCPStore: every rank connects as a client. Otherwise rank
    /// 0 hosts it.
    pub agent_store: bool,
}

impl Launch {
    /// Reads the launch from the process environment: see [`Launch::from_vars`].
    pub fn from_env() -> Result<Option<Launch>, DistError> {
        Launch::from_vars(|name| std::env::var(name).ok())
    }

    /// The launch described by the variables `get` returns (an empty value counts as unset).
    ///
    /// - `WORLD_SIZE` set: torchrun (or any launcher with its variables): `RANK`,
    ///   `LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT` are required too, and
    ///   `TORCHELASTIC_USE_AGENT_STORE=True` means the agent hosts the store.
    /// - else `SLURM_NTASKS` above 1: an `srun` step: `SLURM_PROCID`, `SLURM_LOCALID`, and
    ///   the store at `MASTER_ADDR` if set, else on the first host of `SLURM_STEP_NODELIST`
    ///   (where task 0 runs), `SLURM_JOB_NODELIST` or `SLURM_NODELIST`; `MASTER_PORT` if set,
    ///   else [`DEFAULT_MASTER_PORT`].
    /// - else `None`: a single process.
    ///
    /// A value that does not parse, or a rank outside the world, is an error naming the
    /// variable and its value.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>, DistError> {
        let get = |name: &str| get(name).filter(|value| !value.is_empty());
        if get("WORLD_SIZE").is_some() {
            return torchrun(&get).map(Some);
        }
        match parse::<usize>(&get, "SLURM_NTASKS", "a number of tasks")? {
            Some(tasks) if tasks > 1 => slurm(&get, tasks).map(Some),
            _ => Ok(None),
        }
    }
}

fn torchrun(get: &impl Fn(&str) -> Option<String>) -> Result<Launch, DistError> {
    const WHY: &str = "WORLD_SIZE is set, so this is a torchrun-style launch, which sets \
                       RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT too";
    let world_size = parse_world_size(get, "WORLD_SIZE")?;
    let rank = required::<usize>(get, "RANK", "a rank (a whole number from 0)", WHY)?;
    check_rank(rank, world_size, "RANK", "WORLD_SIZE")?;
    let local_rank = required::<usize>(get, "LOCAL_RANK", "a rank (a whole number from 0)", WHY)?;
    let master_addr = get("MASTER_ADDR").ok_or(DistError::MissingVariable {
        variable: "MASTER_ADDR",
        why: WHY,
    })?;
    let master_port = required::<u16>(get, "MASTER_PORT", "a TCP port (0 to 65535)", WHY)?;
    let agent_store = match get("TORCHELASTIC_USE_AGENT_STORE").as_deref() {
        None | Some("False" | "false" | "0") => false,
        Some("True" | "true" | "1") => true,
        Some(other) => return Err(bad("TORCHELASTIC_USE_AGENT_STORE", other, "True or False")),
    };
    Ok(Launch {
        rank,
        world_size,
        local_rank,
        master_addr,
        master_port,
        agent_store,
    })
}

fn slurm(get: &impl Fn(&str) -> Option<String>, world_size: usize) -> Result<Launch, DistError> {
    const WHY: &str = "SLURM_NTASKS is above 1, so this is an srun step, which sets \
                       SLURM_PROCID, SLURM_LOCALID and the node list too";
    let rank = required::<usize>(
        get,
        "SLURM_PROCID",
        "a task rank (a whole number from 0)",
        WHY,
    )?;
    check_rank(rank, world_size, "SLURM_PROCID", "SLURM_NTASKS")?;
    let local_rank = required::<usize>(get, "SLURM_LOCALID", "a local task id", WHY)?;
    let master_addr = match get("MASTER_ADDR") {
        Some(addr) => addr,
        None => first_slurm_host(get)?,
    };
    let master_port =
        parse::<u16>(get, "MASTER_PORT", "a TCP port (0 to 65535)")?.unwrap_or(DEFAULT_MASTER_PORT);
    Ok(Launch {
        rank,
        world_size,
        local_rank,
        master_addr,
        master_port,
        agent_store: false,
    })
}

/// The first host of the step's node list: where SLURM starts task 0, which hosts the store.
fn first_slurm_host(get: &impl Fn(&str) -> Option<String>) -> Result<String, DistError> {
    let (variable, list) = [
        "SLURM_STEP_NODELIST",
        "SLURM_JOB_NODELIST",
        "SLURM_NODELIST",
    ]
    .into_iter()
    .find_map(|variable| get(variable).map(|list| (variable, list)))
    .ok_or(DistError::MissingVariable {
        variable: "SLURM_JOB_NODELIST",
        why: "under SLURM without MASTER_ADDR, rank 0's host comes from the node list",
    })?;
    let hosts = slurm_hosts(&list).map_err(|expected| bad(variable, &list, &expected))?;
    Ok(hosts
        .into_iter()
        .next()
        .expect("a parsed node list has a host"))
}

/// The host names of a SLURM node list, in order: comma-separated names, each with bracketed
/// lists of numbers and ranges, zero padding kept: `node[01-03,07],gpu-a[3,5]` is `node01`,
/// `node02`, `node03`, `node07`, `gpu-a3`, `gpu-a5`. Several brackets in one name expand
/// left to right (`r[1-2]n[1-2]`: `r1n1 r1n2 r2n1 r2n2`). The error says what was expected.
pub fn slurm_hosts(list: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for name in split_top_level(list)? {
        if name.is_empty() {
            return Err("comma-separated host names, none empty".to_owned());
        }
        expand_host(name, &mut hosts)?;
    }
    Ok(hosts)
}

/// Splits at the commas outside brackets.
fn split_top_level(list: &str) -> Result<Vec<&str>, String> {
    let (mut parts, mut start, mut depth) = (Vec::new(), 0, 0usize);
    for (at, c) in list.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            ']' if depth == 1 => depth = 0,
            '[' | ']' => return Err("brackets that open and close in turn".to_owned()),
            ',' if depth == 0 => {
                parts.push(&list[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a closing ']' for every '['".to_owned());
    }
    parts.push(&list[start..]);
    Ok(parts)
}

/// Appends the expansion of one host name pattern (`prefix[ranges]rest`) to `hosts`.
fn expand_host(pattern: &str, hosts: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = pattern.find('[') else {
        hosts.push(pattern.to_owned());
        return Ok(());
    };
    let close = open
        + pattern[open..]
            .find(']')
            .expect("brackets were checked to close");
    let (prefix, ranges, rest) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    for range in ranges.split(',') {
        let (low, high) = range.split_once('-').unwrap_or((range, range));
        let number = |digits: &str| {
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| digits.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| format!("numbers or ranges like 01-04 in brackets, not {range:?}"))
        };
        let (first, last) = (number(low)?, number(high)?);
        if first > last {
            return Err(format!("ranges that count up, not {range:?}"));
        }
        // SLURM pads every number of a range to the width of its first one.
        let width = low.len();
        for value in first..=last {
            if hosts.len() >= MAX_HOSTS {
                return Err(format!("at most {MAX_HOSTS} hosts"));
            }
            expand_host(&format!("{prefix}{value:0width$}{rest}"), hosts)?;
        }
    }
    Ok(())
}

fn bad(variable: &str, value: &str, expected: &str) -> DistError {
    DistError::BadVariable {
        variable: variable.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// The variable parsed as `T`, `None` when unset.
fn parse<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    expected: &str,
) -> Result<Option<T>, DistError> {
    get(variable)
        .map(|value| {
            value
                .trim()
                .parse::<T>()
                .map_err(|_| bad(variable, &value, expected))
        })
        .transpose()
}

fn required<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    expected: &str,
    why: &'static str,
) -> Result<T, DistError> {
    parse(get, variable, expected)?.ok_or(DistError::MissingVariable { variable, why })
}

fn parse_world_size(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<usize, DistError> {
    let expected = "a number of processes, at least 1";
    match parse::<usize>(get, variable, expected)? {
        Some(0) => Err(bad(variable, "0", expected)),
        Some(world_size) => Ok(world_size),
        None => unreachable!("the caller saw {variable} set"),
    }
}

fn check_rank(
    rank: usize,
    world_size: usize,
    rank_variable: &str,
    world_variable: &str,
) -> Result<(), DistError> {
    if rank < world_size {
        return Ok(());
    }
    Err(bad(
        rank_variable,
        &rank.to_string(),
        &format!("a rank below {world_variable}={world_size}"),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>, DistError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Launch::from_vars(|name| vars.get(name).cloned())
    }

    const TORCHRUN: [(&str, &str); 5] = [
        ("RANK", "3"),
        ("WORLD_SIZE", "8"),
        ("LOCAL_RANK", "1"),
        ("MASTER_ADDR", "10.0.0.7"),
        ("MASTER_PORT", "29400"),
    ];

    #[test]
    fn torchrun_variables_give_the_launch() {
        let expected = Launch {
            rank: 3,
            world_size: 8,
            local_rank: 1,
            master_addr: "10.0.0.7".to_owned(),
            master_port: 29400,
            agent_store: false,
        };
        assert_eq!(launch(&TORCHRUN).unwrap(), Some(expected.clone()));
        let mut agent = TORCHRUN.to_vec();
        agent.push(("TORCHELASTIC_USE_AGENT_STORE", "True"));
        let with_agent = Launch {
            agent_store: true,
            ..expected
        };
        assert_eq!(launch(&agent).unwrap(), Some(with_agent));
    }

    #[test]
    fn torchrun_wins_over_slurm_when_both_are_set() {
        let mut vars = TORCHRUN.to_vec();
        vars.extend([("SLURM_NTASKS", "2"), ("SLURM_PROCID", "1")]);
        assert_eq!(launch(&vars).unwrap().unwrap().rank, 3);
    }

    #[test]
    fn no_world_size_and_no_multi_task_slurm_step_is_a_single_process() {
        assert_eq!(launch(&[]).unwrap(), None);
        assert_eq!(launch(&[("RANK", "0"), ("WORLD_SIZE", "")]).unwrap(), None);
        let one_task = [("SLURM_NTASKS", "1"), ("SLURM_PROCID", "0")];
        assert_eq!(launch(&one_task).unwrap(), None);
    }

    #[test]
    fn slurm_variables_give_the_launch_with_the_first_host_of_the_node_list() {
        let vars = [
            ("SLURM_NTASKS", "8"),
            ("SLURM_PROCID", "5"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_JOB_NODELIST", "node[01-04,07]"),
        ];
        let expected = Launch {
            rank: 5,
            world_size: 8,
            local_rank: 1,
            master_addr: "node01".to_owned(),
            master_port: DEFAULT_MASTER_PORT,
            agent_store: false,
        };
        assert_eq!(launch(&vars).unwrap(), Some(expected));

        let mut step = vars.to_vec();
        step.extend([
            ("SLURM_STEP_NODELIST", "gpu-a[3,5]"),
            ("MASTER_PORT", "12345"),
        ]);
        let launched = launch(&step).unwrap().unwrap();
        assert_eq!(
            (launched.master_addr.as_str(), launched.master_port),
            ("gpu-a3", 12345)
        );

        let mut explicit = vars.to_vec();
        explicit.push(("MASTER_ADDR", "login2"));
        assert_eq!(launch(&explicit).unwrap().unwrap().master_addr, "login2");
    }

    #[test]
    fn slurm_node_lists_expand_brackets_ranges_and_padding() {
        let hosts = |list| slurm_hosts(list).unwrap();
        assert_eq!(
            hosts("node[01-04,07]"),
            ["node01", "node02", "node03", "node04", "node07"]
        );
        assert_eq!(hosts("gpu-a[3,5]"), ["gpu-a3", "gpu-a5"]);
        assert_eq!(hosts("login1"), ["login1"]);
        assert_eq!(
            hosts("a[9-10],b1,c[007-008]"),
            ["a9", "a10", "b1", "c007", "c008"]
        );
        assert_eq!(hosts("r[1-2]n[1-2]"), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        assert_eq!(
            hosts("rack1-[2-3].cluster"),
            ["rack1-2.cluster", "rack1-3.cluster"]
        );
        for broken in [
            "node[01-04",
            "node[a-b]",
            "node[4-1]",
            "node]1[",
            "a,,b",
            "n[[1]]",
        ] {
            assert!(slurm_hosts(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn malformed_values_are_errors_naming_the_variable_and_value() {
        let with = |name: &str, value: &str| {
            let mut vars: Vec<(&str, &str)> = TORCHRUN
                .iter()
                .filter(|(n, _)| *n != name)
                .copied()
                .collect();
            vars.push((name, value));
            launch(&vars).unwrap_err().to_string()
        };
        let message = with("WORLD_SIZE", "two");
        assert!(message.contains("WORLD_SIZE=\"two\""), "{message}");
        assert!(with("WORLD_SIZE", "0").contains("WORLD_SIZE=\"0\""));
        assert!(with("RANK", "-1").contains("RANK=\"-1\""));
        let message = with("RANK", "8");
        assert!(
            message.contains("RANK=\"8\"") && message.contains("WORLD_SIZE=8"),
            "{message}"
        );
        assert!(with("MASTER_PORT", "70000").contains("MASTER_PORT=\"70000\""));
        assert!(with("LOCAL_RANK", "x").contains("LOCAL_RANK=\"x\""));
        let message = with("TORCHELASTIC_USE_AGENT_STORE", "maybe");
        assert!(
            message.contains("TORCHELASTIC_USE_AGENT_STORE"),
            "{message}"
        );

        let missing = launch(&[("WORLD_SIZE", "2"), ("RANK", "0")]).unwrap_err();
        assert!(
            missing.to_string().contains("LOCAL_RANK is unset"),
            "{missing}"
        );

        let slurm = |vars: &[(&str, &str)]| launch(vars).unwrap_err().to_string();
        let message = slurm(&[("SLURM_NTASKS", "many")]);
        assert!(message.contains("SLURM_NTASKS=\"many\""), "{message}");
        let message = slurm(&[
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "2"),
            ("SLURM_LOCALID", "0"),
        ]);
        assert!(message.contains("SLURM_PROCID=\"2\""), "{message}");
        let message = slurm(&[
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "0"),
            ("SLURM_LOCALID", "0"),
            ("SLURM_JOB_NODELIST", "node[1-"),
        ]);
        assert!(
            message.contains("SLURM_JOB_NODELIST=\"node[1-\""),
            "{message}"
        );
        let message = slurm(&[
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "0"),
            ("SLURM_LOCALID", "0"),
        ]);
        assert!(message.contains("SLURM_JOB_NODELIST is unset"), "{message}");
    }
}
