//! wav2vec 2.0's contrastive loss (§3.2, eq. 3): for each masked frame t, with context c_t
//! and quantized target q_t, `L_m = −log( exp(sim(c_t, q_t)/κ) / Σ_{q̃ ∈ Q_t} exp(sim(c_t, q̃)/κ) )`,
//! where Q_t is q_t plus K distractors drawn from the other masked frames of the same
//! utterance and sim is the cosine similarity. Paper: K = 100, κ = 0.1. The distractors are
//! drawn from libtorch's generator.

use tch::{Device, Kind, Tensor};

use crate::loss::l2_normalize;
use crate::precision::{fp32, full_precision};

/// One masked frame's prediction task: find the target of frame `frame` of utterance
/// `utterance` among it and the targets of the `distractors` frames (same utterance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedFrame {
    /// Utterance index `b`.
    pub utterance: usize,
    /// Frame index `t` (a masked frame).
    pub frame: usize,
    /// Frames of the same utterance whose targets serve as distractors.
    pub distractors: Vec<usize>,
}

/// For every masked frame of every utterance, `num_negatives` distractor frames drawn
/// uniformly with replacement from the *other* masked frames of the same utterance (as
/// fairseq's `sample_negatives`: draw in `0..n−1`, shift draws at or past the frame's own
/// position up by one). A masked frame that is its utterance's only masked frame has no
/// possible distractor and is skipped (fairseq would fail there; its masks always have at
/// least two spans). Frames come in utterance order, then frame order.
pub fn sample_negatives(mask: &[Vec<bool>], num_negatives: usize) -> Vec<MaskedFrame> {
    let mut tasks = Vec::new();
    for (utterance, frames) in mask.iter().enumerate() {
        let masked: Vec<usize> = (0..frames.len()).filter(|&t| frames[t]).collect();
        let count = masked.len();
        if count < 2 {
            continue;
        }
        let draws = Tensor::randint(
            count as i64 - 1,
            [(count * num_negatives) as i64],
            (Kind::Int64, Device::Cpu),
        );
        let draws = Vec::<i64>::try_from(draws).unwrap_or_default();
        for (position, &frame) in masked.iter().enumerate() {
            let distractors = draws[position * num_negatives..(position + 1) * num_negatives]
                .iter()
                .map(|&draw| {
                    let draw = draw as usize;
                    masked[if draw >= position { draw + 1 } else { draw }]
                })
                .collect();
            tasks.push(MaskedFrame {
                utterance,
                frame,
                distractors,
            });
        }
    }
    tasks
}

/// wav2vec 2.0's contrastive loss (eq. 3) on context vectors `[B, T, D]` and quantized
/// targets `[B, T, D]`, for the given prediction tasks (every task must have the same number
/// K of distractors). Per task, the logits are the cosine similarity of the context to the
/// true target, then to each distractor's target, divided by `temperature` κ; a distractor
/// whose target equals the true target exactly (the same code) gets logit −∞, as in fairseq.
/// The loss is the cross-entropy with class 0, averaged over the tasks.
///
/// Returns `(loss, accuracy)`, accuracy being the share of tasks whose true target scored
/// strictly above every distractor. With no task at all, the loss is a zero attached to
/// `context`'s graph and the accuracy 0.
///
/// Computed in float32 whatever autocast the caller runs under.
pub fn contrastive_loss_with_negatives(
    context: &Tensor,
    targets: &Tensor,
    tasks: &[MaskedFrame],
    temperature: f64,
) -> (Tensor, f64) {
    full_precision(|| {
        contrastive_loss_with_negatives_fp32(&fp32(context), &fp32(targets), tasks, temperature)
    })
}

fn contrastive_loss_with_negatives_fp32(
    context: &Tensor,
    targets: &Tensor,
    tasks: &[MaskedFrame],
    temperature: f64,
) -> (Tensor, f64) {
    let (_, frames, width) = context.size3().expect("context is [B, T, D]");
    if tasks.is_empty() {
        return (context.sum(Kind::Float) * 0.0, 0.0);
    }
    let negatives = tasks[0].distractors.len() as i64;
    let device = context.device();
    let flat_index = |utterance: usize, frame: usize| utterance as i64 * frames + frame as i64;
    let anchors: Vec<i64> = tasks
        .iter()
        .map(|task| flat_index(task.utterance, task.frame))
        .collect();
    let distractors: Vec<i64> = tasks
        .iter()
        .flat_map(|task| {
            task.distractors
                .iter()
                .map(|&d| flat_index(task.utterance, d))
        })
        .collect();
    let anchors = Tensor::from_slice(&anchors).to_device(device); // [M]
    let distractors = Tensor::from_slice(&distractors).to_device(device); // [M·K]
    let context = context.reshape([-1, width]).to_kind(Kind::Float);
    let targets = targets.reshape([-1, width]).to_kind(Kind::Float);
    let queries = l2_normalize(&context.index_select(0, &anchors)); // [M, D]
    let positives = targets.index_select(0, &anchors); // [M, D]
    let negative_targets = targets
        .index_select(0, &distractors)
        .view([-1, negatives, width]); // [M, K, D]
    let duplicate = negative_targets
        .eq_tensor(&positives.unsqueeze(1))
        .all_dim(-1, false); // [M, K]
    let positive_logits =
        (&queries * l2_normalize(&positives)).sum_dim_intlist(&[1i64][..], true, Kind::Float); // [M, 1]
    let negative_logits = (queries.unsqueeze(1)
        * l2_normalize(&negative_targets.view([-1, width])).view([-1, negatives, width]))
    .sum_dim_intlist(&[-1i64][..], false, Kind::Float)
    .masked_fill(&duplicate, f64::NEG_INFINITY); // [M, K]
    let logits = Tensor::cat(&[&positive_logits, &negative_logits], 1) / temperature; // [M, 1+K]
    let accuracy = if negatives == 0 {
        1.0
    } else {
        positive_logits
            .squeeze_dim(1)
            .gt_tensor(&negative_logits.amax(&[1i64][..], false))
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    };
    let classes = Tensor::zeros([tasks.len() as i64], (Kind::Int64, device));
    let loss = logits.log_softmax(-1, Kind::Float).nll_loss(&classes);
    (loss, accuracy)
}

/// [`contrastive_loss_with_negatives`] with `num_negatives` distractors per masked frame
/// drawn by [`sample_negatives`] from `mask` (paper: K = 100, κ = 0.1).
pub fn contrastive_loss(
    context: &Tensor,
    targets: &Tensor,
    mask: &[Vec<bool>],
    num_negatives: usize,
    temperature: f64,
) -> (Tensor, f64) {
    let tasks = sample_negatives(mask, num_negatives);
    contrastive_loss_with_negatives(context, targets, &tasks, temperature)
}

/// [`sample_negatives`] without the host: the same draw (uniform with replacement among the
/// other masked frames of the same utterance) made with tensor ops on `mask`'s device, for
/// every frame at once, so a GPU step never waits to read the mask back. `mask` is `[B, T]`
/// bool. Returns `(distractors, valid)`: `distractors` `[B, T, K]` int64 frame indices into
/// the same utterance, and `valid` `[B, T]` bool, true for the masked frames of utterances
/// with at least two of them (the tasks [`sample_negatives`] makes); the distractors of the
/// other frames are in-range frames to be ignored. The draws come from libtorch's
/// generator on that device, so they differ from the host path's.
pub fn sample_negatives_on_device(mask: &Tensor, num_negatives: usize) -> (Tensor, Tensor) {
    let (batch, frames) = mask.size2().expect("mask is [B, T]");
    let device = mask.device();
    let negatives = num_negatives as i64;
    let masked = mask.to_kind(Kind::Int64);
    let counts = masked.sum_dim_intlist(&[1i64][..], true, Kind::Int64); // [B, 1]
                                                                         // Each masked frame's position among its utterance's masked frames.
    let position = masked.cumsum(1, Kind::Int64) - 1; // [B, T]
                                                      // The masked frames first, each in frame order: position j → frame.
    let frame_index = Tensor::arange(frames, (Kind::Int64, device));
    let order = (mask.logical_not().to_kind(Kind::Int64) * frames + &frame_index).argsort(1, false); // [B, T]
                                                                                                     // As on the host: draw in 0..n−1, then shift draws at or past the frame's own position.
    let choices = (&counts - 1).clamp_min(1).unsqueeze(-1); // [B, 1, 1]
    let draws = (Tensor::rand([batch, frames, negatives], (Kind::Float, device))
        * choices.to_kind(Kind::Float))
    .floor()
    .to_kind(Kind::Int64)
    .minimum(&(&choices - 1));
    let draws = (&draws
        + draws
            .ge_tensor(&position.unsqueeze(-1))
            .to_kind(Kind::Int64))
    .clamp_max(frames - 1);
    let distractors = order
        .gather(1, &draws.view([batch, frames * negatives]), false)
        .view([batch, frames, negatives]);
    let valid = mask.logical_and(&counts.ge(2));
    (distractors, valid)
}

/// [`contrastive_loss_with_negatives`] for the tasks of [`sample_negatives_on_device`]
/// (`distractors` `[B, T, K]` with K ≥ 1, `valid` `[B, T]`), with nothing read on the host: the loss
/// over every frame with those that are not valid tasks weighted 0, the mean taken over the
/// valid ones. Returns `(loss, accuracy)`, both scalar tensors, with the same meaning and
/// the same values for no task as [`contrastive_loss_with_negatives`].
pub fn contrastive_loss_with_negatives_on_device(
    context: &Tensor,
    targets: &Tensor,
    distractors: &Tensor,
    valid: &Tensor,
    temperature: f64,
) -> (Tensor, Tensor) {
    full_precision(|| {
        let (context, targets) = (fp32(context), fp32(targets));
        let (batch, frames, width) = context.size3().expect("context is [B, T, D]");
        let negatives = distractors.size()[2];
        // Unit vectors along the last dimension (l2_normalize works on rows of a matrix).
        let unit = |x: &Tensor| x / x.norm_scalaropt_dim(2, &[-1i64][..], true).clamp_min(1e-12);
        let queries = unit(&context); // [B, T, D]
        let positives = unit(&targets);
        let index = distractors
            .view([batch, frames * negatives, 1])
            .expand([batch, frames * negatives, width], false);
        let negative_targets = targets
            .gather(1, &index, false)
            .view([batch, frames, negatives, width]);
        let duplicate = negative_targets
            .eq_tensor(&targets.unsqueeze(2))
            .all_dim(-1, false); // [B, T, K]
        let positive_logits =
            (&queries * &positives).sum_dim_intlist(&[-1i64][..], true, Kind::Float); // [B, T, 1]
        let negative_logits = (queries.unsqueeze(2) * unit(&negative_targets))
            .sum_dim_intlist(&[-1i64][..], false, Kind::Float)
            .masked_fill(&duplicate, f64::NEG_INFINITY); // [B, T, K]
        let logits = Tensor::cat(&[&positive_logits, &negative_logits], -1) / temperature;
        let losses = -logits.log_softmax(-1, Kind::Float).select(-1, 0); // [B, T]
        let tasks = valid.to_kind(Kind::Float).sum(Kind::Float).clamp_min(1.0);
        let loss = losses
            .masked_fill(&valid.logical_not(), 0.0)
            .sum(Kind::Float)
            / &tasks;
        let correct = positive_logits
            .squeeze_dim(-1)
            .gt_tensor(&negative_logits.amax(&[-1i64][..], false))
            .logical_and(valid);
        let accuracy = correct.to_kind(Kind::Float).sum(Kind::Float) / tasks;
        (loss, accuracy.detach())
    })
}

/// [`contrastive_loss`] without the host ([`sample_negatives_on_device`] then
/// [`contrastive_loss_with_negatives_on_device`]); `mask` is the `[B, T]` bool tensor.
pub fn contrastive_loss_on_device(
    context: &Tensor,
    targets: &Tensor,
    mask: &Tensor,
    num_negatives: usize,
    temperature: f64,
) -> (Tensor, Tensor) {
    let (distractors, valid) = sample_negatives_on_device(mask, num_negatives);
    contrastive_loss_with_negatives_on_device(context, targets, &distractors, &valid, temperature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f64], b: &[f64]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    }

    /// Eq. 3 in plain f64, over `[B][T][D]` nested vectors.
    fn brute_force(
        context: &[Vec<Vec<f64>>],
        targets: &[Vec<Vec<f64>>],
        tasks: &[MaskedFrame],
        kappa: f64,
    ) -> (f64, f64) {
        let (mut loss, mut correct) = (0.0, 0.0);
        for task in tasks {
            let c = &context[task.utterance][task.frame];
            let q = &targets[task.utterance][task.frame];
            let positive = cosine(c, q) / kappa;
            let negatives: Vec<f64> = task
                .distractors
                .iter()
                .map(|&d| &targets[task.utterance][d])
                .filter(|candidate| *candidate != q)
                .map(|candidate| cosine(c, candidate) / kappa)
                .collect();
            let denominator: f64 = positive.exp() + negatives.iter().map(|l| l.exp()).sum::<f64>();
            loss += -(positive.exp() / denominator).ln();
            if negatives.iter().all(|&l| positive > l) {
                correct += 1.0;
            }
        }
        (loss / tasks.len() as f64, correct / tasks.len() as f64)
    }

    fn nested(t: &Tensor) -> Vec<Vec<Vec<f64>>> {
        let t = t.to_kind(Kind::Double);
        (0..t.size()[0])
            .map(|b| crate::loss::test_rows(&t.get(b)))
            .collect()
    }

    fn task(utterance: usize, frame: usize, distractors: &[usize]) -> MaskedFrame {
        MaskedFrame {
            utterance,
            frame,
            distractors: distractors.to_vec(),
        }
    }

    #[test]
    fn contrastive_loss_matches_brute_force() {
        tch::manual_seed(8);
        let context = Tensor::randn([2, 6, 4], (Kind::Float, Device::Cpu));
        let targets = Tensor::randn([2, 6, 4], (Kind::Float, Device::Cpu));
        // Utterance 0 masks frames 1..4, utterance 1 frames 0, 2, 5; repeats allowed.
        let tasks = vec![
            task(0, 1, &[2, 3, 3]),
            task(0, 2, &[1, 1, 3]),
            task(0, 3, &[2, 1, 2]),
            task(1, 0, &[2, 5, 5]),
            task(1, 2, &[0, 5, 0]),
            task(1, 5, &[2, 2, 0]),
        ];
        for kappa in [0.1, 0.5, 1.0] {
            let (loss, accuracy) =
                contrastive_loss_with_negatives(&context, &targets, &tasks, kappa);
            let (want, want_accuracy) =
                brute_force(&nested(&context), &nested(&targets), &tasks, kappa);
            let got = loss.double_value(&[]);
            assert!((got - want).abs() < 1e-5, "κ = {kappa}: {got} vs {want}");
            assert!(
                (accuracy - want_accuracy).abs() < 1e-6,
                "{accuracy} vs {want_accuracy}"
            );
        }
    }

    /// Context equal to the targets, targets one-hot (so distractors are orthogonal): the
    /// true logit is 1/κ, each of the K distractors 0, and the loss `ln(1 + K·e^(−1/κ))`.
    #[test]
    fn orthogonal_distractors_give_the_hand_formula() {
        let targets = Tensor::eye(4, (Kind::Float, Device::Cpu)).unsqueeze(0); // [1, 4, 4]
        let tasks: Vec<MaskedFrame> = (0..4)
            .map(|t| task(0, t, &[(t + 1) % 4, (t + 2) % 4, (t + 3) % 4]))
            .collect();
        let (loss, accuracy) = contrastive_loss_with_negatives(&targets, &targets, &tasks, 0.1);
        let want = (1.0 + 3.0 * (-10.0f64).exp()).ln();
        assert!((loss.double_value(&[]) - want).abs() < 1e-7);
        assert_eq!(accuracy, 1.0);
    }

    /// fairseq's rule: a distractor with exactly the true target's code is left out (−∞).
    #[test]
    fn distractor_equal_to_the_target_is_ignored() {
        let targets = Tensor::from_slice2(&[[1.0f32, 0.0], [1.0, 0.0], [0.0, 1.0]]).unsqueeze(0);
        let context = Tensor::from_slice2(&[[1.0f32, 1.0], [1.0, 0.0], [0.0, 1.0]]).unsqueeze(0);
        let with_copy = [task(0, 0, &[1, 2])];
        let without = [task(0, 0, &[2])];
        let (loss, accuracy) = contrastive_loss_with_negatives(&context, &targets, &with_copy, 0.5);
        let (want, _) = contrastive_loss_with_negatives(&context, &targets, &without, 0.5);
        assert!(loss.equal(&want));
        // cos = 1/√2 for both candidates: a tie, which is not counted as correct.
        assert_eq!(accuracy, 0.0);
    }

    #[test]
    fn negatives_come_from_other_masked_frames_of_the_same_utterance() {
        tch::manual_seed(9);
        // Six utterances of 40 frames, each frame masked with probability 0.4.
        let mask: Vec<Vec<bool>> = (0..6)
            .map(|_| {
                let draws = Tensor::rand([40], (Kind::Float, Device::Cpu)).lt(0.4);
                Vec::<bool>::try_from(draws).unwrap()
            })
            .collect();
        let tasks = sample_negatives(&mask, 20);
        let masked_total = mask.iter().flatten().filter(|&&m| m).count();
        assert_eq!(tasks.len(), masked_total);
        for task in &tasks {
            assert!(mask[task.utterance][task.frame]);
            assert_eq!(task.distractors.len(), 20);
            for &d in &task.distractors {
                assert_ne!(d, task.frame);
                assert!(mask[task.utterance][d], "frame {d} is not masked");
            }
        }
        // Over many draws, every other masked frame shows up.
        let mask = vec![vec![true, false, true, true, false]];
        let tasks = sample_negatives(&mask, 200);
        let mut seen: Vec<usize> = tasks[0].distractors.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![2, 3]);
    }

    /// The tasks of the device sampler, read back as the host path's.
    fn device_tasks(distractors: &Tensor, valid: &Tensor) -> Vec<MaskedFrame> {
        let (batch, frames) = valid.size2().unwrap();
        let mut tasks = Vec::new();
        for utterance in 0..batch {
            for frame in 0..frames {
                if valid.int64_value(&[utterance, frame]) != 0 {
                    let row = distractors.get(utterance).get(frame);
                    tasks.push(MaskedFrame {
                        utterance: utterance as usize,
                        frame: frame as usize,
                        distractors: Vec::<i64>::try_from(row)
                            .unwrap()
                            .into_iter()
                            .map(|d| d as usize)
                            .collect(),
                    });
                }
            }
        }
        tasks
    }

    /// The device sampler draws what the host one does: K distractors per masked frame, each
    /// another masked frame of the same utterance, every one of them about equally often;
    /// utterances with fewer than two masked frames give no task.
    #[test]
    fn the_device_sampler_draws_from_the_other_masked_frames_uniformly() {
        tch::manual_seed(11);
        let mask = Tensor::rand([6, 40], (Kind::Float, Device::Cpu)).lt(0.4);
        let _ = mask.get(4).fill_(0);
        let _ = mask.get(5).fill_(0);
        let _ = mask.get(5).get(7).fill_(1);
        let (distractors, valid) = sample_negatives_on_device(&mask, 500);
        let host: Vec<Vec<bool>> = (0..6)
            .map(|b| Vec::<bool>::try_from(mask.get(b)).unwrap())
            .collect();
        let tasks = device_tasks(&distractors, &valid);
        let want: Vec<(usize, usize)> = sample_negatives(&host, 1)
            .iter()
            .map(|task| (task.utterance, task.frame))
            .collect();
        let got: Vec<(usize, usize)> = tasks.iter().map(|t| (t.utterance, t.frame)).collect();
        assert_eq!(got, want);
        for task in &tasks {
            let others: Vec<usize> = (0..40)
                .filter(|&t| host[task.utterance][t] && t != task.frame)
                .collect();
            let mut counts = vec![0usize; 40];
            for &d in &task.distractors {
                assert!(others.contains(&d), "frame {d} for {task:?}");
                counts[d] += 1;
            }
            // 500 draws over n−1 frames: each within 5 standard deviations of its mean.
            let expected = 500.0 / others.len() as f64;
            let spread = 5.0 * (expected * (1.0 - 1.0 / others.len() as f64)).sqrt();
            for &frame in &others {
                let seen = counts[frame] as f64;
                assert!((seen - expected).abs() <= spread, "{seen} vs {expected}");
            }
        }
    }

    /// The device loss equals the host loss on the same tasks, with the frames that are no
    /// task weighted out, and both agree on nothing to predict.
    #[test]
    fn the_device_loss_equals_the_host_loss_on_the_same_draws() {
        tch::manual_seed(12);
        let context = Tensor::randn([3, 12, 5], (Kind::Float, Device::Cpu));
        let targets = Tensor::randn([3, 12, 5], (Kind::Float, Device::Cpu));
        // A copied target, so that some distractor equals its true target.
        targets.get(0).get(3).copy_(&targets.get(0).get(4));
        let mask = Tensor::rand([3, 12], (Kind::Float, Device::Cpu)).lt(0.5);
        let _ = mask.get(0).narrow(0, 2, 4).fill_(1);
        for negatives in [1, 7] {
            let (distractors, valid) = sample_negatives_on_device(&mask, negatives);
            let tasks = device_tasks(&distractors, &valid);
            let (want, want_accuracy) =
                contrastive_loss_with_negatives(&context, &targets, &tasks, 0.1);
            let (loss, accuracy) = contrastive_loss_with_negatives_on_device(
                &context,
                &targets,
                &distractors,
                &valid,
                0.1,
            );
            let (got, want) = (loss.double_value(&[]), want.double_value(&[]));
            assert!(
                (got - want).abs() < 1e-5 * want.abs().max(1.0),
                "{got} vs {want}"
            );
            assert!((accuracy.double_value(&[]) - want_accuracy).abs() < 1e-6);
        }
        let lonely = Tensor::zeros([3, 12], (Kind::Bool, Device::Cpu));
        let context = context.set_requires_grad(true);
        let (loss, accuracy) = contrastive_loss_on_device(&context, &targets, &lonely, 5, 0.1);
        assert_eq!(
            (loss.double_value(&[]), accuracy.double_value(&[])),
            (0.0, 0.0)
        );
        loss.backward();
        assert!(context.grad().defined());
    }

    #[test]
    fn lone_masked_frame_is_skipped() {
        tch::manual_seed(10);
        let context = Tensor::randn([2, 4, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let targets = Tensor::randn([2, 4, 3], (Kind::Float, Device::Cpu));
        // Utterance 0 has one masked frame (skipped), utterance 1 two.
        let mask = vec![
            vec![false, true, false, false],
            vec![true, false, false, true],
        ];
        let tasks = sample_negatives(&mask, 5);
        assert_eq!(tasks.len(), 2);
        assert!(tasks.iter().all(|task| task.utterance == 1));
        let (loss, _) = contrastive_loss(&context, &targets, &mask, 5, 0.1);
        assert!(loss.double_value(&[]).is_finite());
        // Nothing to predict at all: a zero loss that still backpropagates.
        let lonely = vec![vec![false, true, false, false]; 2];
        let (loss, accuracy) = contrastive_loss(&context, &targets, &lonely, 5, 0.1);
        assert_eq!((loss.double_value(&[]), accuracy), (0.0, 0.0));
        loss.backward();
        assert!(context.grad().defined());
    }
}
