//! Byte mutations of seed files, drawn by a proptest [`Strategy`] so that a failing input
//! shrinks to fewer and smaller mutations.
//!
//! One input is a seed (chosen among the target's corpus files) with 1 to
//! [`MAX_MUTATIONS`] mutations applied in order: bit flips, interesting bytes and integers
//! (0, ±1, the extremes of each width, powers of two up to 2^40, the input's length ± 1) in
//! either byte order, random insertions, deletions, duplications, truncation, splices of
//! another seed, tokens of the format or of text in general (quotes, separators, NaN, huge
//! numbers, invalid UTF-8), repeated up to thousands of times, and the target's repack
//! (checksums fixed). A [`Position`] is a fraction of whatever length the input has when
//! the mutation applies, or an offset from either end (where headers and footers are), so
//! one strategy serves every seed.

use proptest::prelude::*;
use proptest::sample::select;

use crate::target::Target;

/// Most mutations applied to one seed.
pub const MAX_MUTATIONS: usize = 6;

/// Longest input a mutation may make; longer ones are cut here.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// Tokens inserted into every format: separators, quotes, control characters, special
/// numbers and invalid UTF-8.
pub const COMMON_TOKENS: &[&[u8]] = &[
    b"\0",
    b"\r",
    b"\n",
    b"\r\n",
    b"\t",
    b",",
    b";",
    b"\"",
    b"'",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b"=",
    b":",
    b"NaN",
    b"nan",
    b"inf",
    b"-inf",
    b"-1e400",
    b"1e309",
    b"-0",
    b"-1",
    b"0x10",
    b"4294967296",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"123456789012345678901234567890123456789012345678901234567890",
    b"0.000000000000000000000000000000000000000000000000000001",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x80\xae",
];

/// Integer values written over 2, 4 or 8 bytes (cut to the width).
pub const INTERESTING_INTEGERS: &[u64] = &[
    0,
    1,
    2,
    16,
    28,
    255,
    256,
    784,
    0x7f,
    0x80,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    i32::MAX as u64,
    1 << 31,
    u32::MAX as u64,
    1 << 32,
    1 << 40,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
];

/// A fraction `value / 2^64` in [0, 1): a position, or a choice among several things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction(pub u64);

impl Fraction {
    /// The fraction closest to `fraction` (clamped to [0, 1)).
    pub fn new(fraction: f64) -> Fraction {
        Fraction((fraction.clamp(0.0, 1.0) * 2f64.powi(64)) as u64)
    }

    /// This fraction of `len`, rounded down: in `0..len` (0 when `len` is 0).
    pub fn of(self, len: usize) -> usize {
        ((len as u128 * u128::from(self.0)) >> 64) as usize
    }
}

fn fraction() -> impl Strategy<Value = Fraction> {
    any::<u64>().prop_map(Fraction)
}

/// Where a mutation applies: anywhere, or near either end, where headers and footers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// This fraction of the way through.
    Fraction(Fraction),
    /// This many bytes after the start.
    FromStart(u16),
    /// This many bytes before the end.
    FromEnd(u16),
}

impl Position {
    /// One of `slots` places (bytes, or gaps to insert at): in `0..slots`, 0 when none.
    pub fn of(self, slots: usize) -> usize {
        let last = slots.saturating_sub(1);
        match self {
            Position::Fraction(fraction) => fraction.of(slots),
            Position::FromStart(offset) => usize::from(offset).min(last),
            Position::FromEnd(offset) => last - usize::from(offset).min(last),
        }
    }
}

fn position() -> impl Strategy<Value = Position> {
    prop_oneof![
        2 => fraction().prop_map(Position::Fraction),
        1 => (0u16..64).prop_map(Position::FromStart),
        1 => (0u16..64).prop_map(Position::FromEnd),
    ]
}

/// What an integer mutation writes.
#[derive(Clone, Copy, Debug)]
pub enum Integer {
    /// One of [`INTERESTING_INTEGERS`].
    Constant(u64),
    /// The input's length plus this (−1, 0 or 1): sizes that are just off.
    InputLength(i8),
}

/// One edit of the input bytes.
#[derive(Clone, Debug)]
pub enum Mutation {
    FlipBit {
        at: Position,
        bit: u8,
    },
    SetByte {
        at: Position,
        value: u8,
    },
    SetInteger {
        at: Position,
        width: usize,
        big_endian: bool,
        value: Integer,
    },
    InsertBytes {
        at: Position,
        bytes: Vec<u8>,
    },
    /// A token of the target's dictionary or of [`COMMON_TOKENS`], `repeat` times.
    InsertToken {
        at: Position,
        token: Fraction,
        repeat: usize,
    },
    DeleteRange {
        at: Position,
        len: usize,
    },
    DuplicateRange {
        from: Position,
        len: usize,
        to: Position,
    },
    Truncate {
        at: Position,
    },
    /// A piece of another seed, inserted or written over the input.
    Splice {
        at: Position,
        seed: Fraction,
        from: Position,
        len: usize,
        overwrite: bool,
    },
    /// The target's repack (e.g. PNG checksums recomputed).
    Repack,
}

/// One input: the seed it starts from and the mutations applied to it.
#[derive(Clone, Debug)]
pub struct MutatedSeed {
    pub seed: Fraction,
    pub mutations: Vec<Mutation>,
}

fn integer() -> impl Strategy<Value = Integer> {
    prop_oneof![
        4 => select(INTERESTING_INTEGERS).prop_map(Integer::Constant),
        1 => (-1i8..=1).prop_map(Integer::InputLength),
    ]
}

fn range_len() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..16, 1 => 16usize..4096]
}

/// A single mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (position(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        2 => (position(), select(&[0u8, 1, 0x7f, 0x80, 0xff][..]))
            .prop_map(|(at, value)| Mutation::SetByte { at, value }),
        1 => (position(), any::<u8>()).prop_map(|(at, value)| Mutation::SetByte { at, value }),
        3 => (position(), select(&[2usize, 4, 8][..]), any::<bool>(), integer()).prop_map(
            |(at, width, big_endian, value)| Mutation::SetInteger {
                at,
                width,
                big_endian,
                value,
            }
        ),
        2 => (position(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
        3 => (
            position(),
            fraction(),
            prop_oneof![8 => Just(1usize), 2 => 2usize..8, 1 => 100usize..20_000],
        )
            .prop_map(|(at, token, repeat)| Mutation::InsertToken { at, token, repeat }),
        2 => (position(), range_len()).prop_map(|(at, len)| Mutation::DeleteRange { at, len }),
        1 => (position(), range_len(), position())
            .prop_map(|(from, len, to)| Mutation::DuplicateRange { from, len, to }),
        1 => position().prop_map(|at| Mutation::Truncate { at }),
        1 => (
            position(),
            fraction(),
            position(),
            range_len(),
            any::<bool>()
        )
            .prop_map(|(at, seed, from, len, overwrite)| Mutation::Splice {
                at,
                seed,
                from,
                len,
                overwrite,
            }),
        1 => Just(Mutation::Repack),
    ]
}

/// A seed and 1 to [`MAX_MUTATIONS`] mutations, mostly 1 or 2: each more mutation makes
/// an input less likely to get past the reader's first checks.
pub fn mutated_seed() -> impl Strategy<Value = MutatedSeed> {
    let mutations = prop_oneof![
        2 => prop::collection::vec(mutation(), 1..=2),
        1 => prop::collection::vec(mutation(), 1..=MAX_MUTATIONS),
    ];
    (fraction(), mutations).prop_map(|(seed, mutations)| MutatedSeed { seed, mutations })
}

/// A place to insert at in `bytes`: before a byte or at the end.
fn gap(at: Position, bytes: &[u8]) -> usize {
    at.of(bytes.len() + 1)
}

/// The input: the chosen seed of `seeds` with the mutations applied.
pub fn apply(input: &MutatedSeed, seeds: &[Vec<u8>], target: &Target) -> Vec<u8> {
    assert!(!seeds.is_empty(), "a target needs at least one seed");
    let mut bytes = seeds[input.seed.of(seeds.len())].clone();
    for mutation in &input.mutations {
        apply_one(mutation, &mut bytes, seeds, target);
        bytes.truncate(MAX_INPUT_BYTES);
    }
    bytes
}

fn apply_one(mutation: &Mutation, bytes: &mut Vec<u8>, seeds: &[Vec<u8>], target: &Target) {
    match mutation {
        Mutation::FlipBit { at, bit } => {
            if !bytes.is_empty() {
                let at = at.of(bytes.len());
                bytes[at] ^= 1 << bit;
            }
        }
        Mutation::SetByte { at, value } => {
            if !bytes.is_empty() {
                let at = at.of(bytes.len());
                bytes[at] = *value;
            }
        }
        Mutation::SetInteger {
            at,
            width,
            big_endian,
            value,
        } => {
            let value = match *value {
                Integer::Constant(value) => value,
                Integer::InputLength(delta) => {
                    (bytes.len() as u64).wrapping_add_signed(i64::from(delta))
                }
            };
            let encoded = if *big_endian {
                value.to_be_bytes()[8 - width..].to_vec()
            } else {
                value.to_le_bytes()[..*width].to_vec()
            };
            let at = gap(*at, bytes);
            let end = (at + width).min(bytes.len());
            bytes.splice(at..end, encoded);
        }
        Mutation::InsertBytes { at, bytes: insert } => {
            let at = gap(*at, bytes);
            bytes.splice(at..at, insert.iter().copied());
        }
        Mutation::InsertToken { at, token, repeat } => {
            let tokens = target.dictionary.len() + COMMON_TOKENS.len();
            let token = token.of(tokens);
            let token = match target.dictionary.get(token) {
                Some(token) => token,
                None => COMMON_TOKENS[token - target.dictionary.len()],
            };
            let at = gap(*at, bytes);
            bytes.splice(at..at, token.repeat(*repeat));
        }
        Mutation::DeleteRange { at, len } => {
            let at = gap(*at, bytes);
            let end = (at + len).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::DuplicateRange { from, len, to } => {
            let from = gap(*from, bytes);
            let end = (from + len).min(bytes.len());
            let piece = bytes[from..end].to_vec();
            let to = gap(*to, bytes);
            bytes.splice(to..to, piece);
        }
        Mutation::Truncate { at } => {
            let at = gap(*at, bytes);
            bytes.truncate(at);
        }
        Mutation::Splice {
            at,
            seed,
            from,
            len,
            overwrite,
        } => {
            let other = &seeds[seed.of(seeds.len())];
            let from = gap(*from, other);
            let piece = &other[from..(from + len).min(other.len())];
            let at = gap(*at, bytes);
            let end = if *overwrite {
                (at + piece.len()).min(bytes.len())
            } else {
                at
            };
            bytes.splice(at..end, piece.iter().copied());
        }
        Mutation::Repack => {
            if let Some(repack) = target.repack {
                *bytes = repack(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::target_by_name;

    fn at(fraction: f64) -> Position {
        Position::Fraction(Fraction::new(fraction))
    }

    fn apply_to(seed: &[u8], mutations: Vec<Mutation>) -> Vec<u8> {
        let input = MutatedSeed {
            seed: Fraction(0),
            mutations,
        };
        apply(&input, &[seed.to_vec()], target_by_name("csv").unwrap())
    }

    #[test]
    fn positions_are_fractions_or_offsets_from_either_end() {
        assert_eq!(at(0.0).of(10), 0);
        assert_eq!(at(0.5).of(10), 5);
        assert_eq!(Fraction(u64::MAX).of(10), 9);
        assert_eq!(at(1.0).of(10), 9);
        assert_eq!(at(0.7).of(0), 0);
        assert_eq!(Position::FromStart(3).of(10), 3);
        assert_eq!(Position::FromStart(30).of(10), 9);
        assert_eq!(Position::FromEnd(0).of(10), 9);
        assert_eq!(Position::FromEnd(30).of(10), 0);
        assert_eq!(Position::FromEnd(2).of(0), 0);
    }

    #[test]
    fn integers_are_written_over_their_width_in_either_byte_order() {
        let seed = [0u8; 8];
        let big = apply_to(
            &seed,
            vec![Mutation::SetInteger {
                at: at(0.0),
                width: 4,
                big_endian: true,
                value: Integer::Constant(0x0102_0304),
            }],
        );
        assert_eq!(big, [1, 2, 3, 4, 0, 0, 0, 0]);
        let little = apply_to(
            &seed,
            vec![Mutation::SetInteger {
                at: at(0.0),
                width: 2,
                big_endian: false,
                value: Integer::InputLength(1),
            }],
        );
        assert_eq!(little, [9, 0, 0, 0, 0, 0, 0, 0]);
        // At the end an integer extends the input.
        let appended = apply_to(
            &[7],
            vec![Mutation::SetInteger {
                at: at(0.99),
                width: 2,
                big_endian: true,
                value: Integer::Constant(u64::MAX),
            }],
        );
        assert_eq!(appended, [7, 0xff, 0xff]);
    }

    #[test]
    fn ranges_are_clamped_to_the_input() {
        let seed = b"abcdef";
        let deleted = apply_to(
            seed,
            vec![Mutation::DeleteRange {
                at: at(0.5),
                len: 100,
            }],
        );
        assert_eq!(deleted, b"abc");
        let truncated = apply_to(seed, vec![Mutation::Truncate { at: at(0.0) }]);
        assert!(truncated.is_empty());
        // Mutations of an empty input do nothing, or insert.
        let inserted = apply_to(
            &[],
            vec![
                Mutation::FlipBit {
                    at: at(0.3),
                    bit: 7,
                },
                Mutation::InsertBytes {
                    at: at(0.9),
                    bytes: vec![1, 2],
                },
            ],
        );
        assert_eq!(inserted, [1, 2]);
    }

    #[test]
    fn repeated_tokens_are_inserted_whole() {
        let csv = target_by_name("csv").unwrap();
        let inserted = apply_to(
            b"ab",
            vec![Mutation::InsertToken {
                at: at(0.5),
                token: Fraction(0),
                repeat: 3,
            }],
        );
        let expected = [&b"a"[..], &csv.dictionary[0].repeat(3), b"b"].concat();
        assert_eq!(inserted, expected);
    }
}
