//! DINO's self-distillation loss (Caron et al., 2021, eq. 1 and Algorithm 1): the teacher's
//! output on each global crop, centered and sharpened, `P_t = softmax((t − c) / τ_t)`, is the
//! target of the student's output on every *other* crop, `P_s = softmax(s / τ_s)`; the loss
//! is the cross-entropy `−Σ P_t log P_s`, averaged over the batch and over the
//! (teacher crop, student crop) pairs that are not the same view.

use tch::{Kind, Tensor};

use crate::precision::{fp32, full_precision};

/// The loss and the teacher's distribution statistics of one step.
#[derive(Debug)]
pub struct DinoLossParts {
    pub loss: Tensor,
    /// Mean entropy (nats) of the teacher's sharpened distribution per image: near ln K =
    /// uniform for every image (collapse by centering); low = confident, as it should be.
    pub teacher_entropy: Tensor,
    /// Entropy of the teacher's distribution averaged over the batch: near 0 = every image
    /// lands on the same dimension (collapse by sharpening); high = images spread over
    /// dimensions.
    pub teacher_marginal_entropy: Tensor,
}

/// `student`: logits per crop, global crops first, `[N, K]` each; `teacher`: logits per
/// global crop `[N, K]` (computed without gradients); `center`: `[1, K]`. Teacher crop `i`
/// is never paired with student crop `i` (the same view).
///
/// Computed in float32 whatever autocast the caller runs under.
pub fn dino_loss(
    student: &[Tensor],
    teacher: &[Tensor],
    center: &Tensor,
    student_temperature: f64,
    teacher_temperature: f64,
) -> DinoLossParts {
    full_precision(|| {
        let student: Vec<Tensor> = student.iter().map(fp32).collect();
        let teacher: Vec<Tensor> = teacher.iter().map(fp32).collect();
        dino_loss_fp32(
            &student,
            &teacher,
            &fp32(center),
            student_temperature,
            teacher_temperature,
        )
    })
}

fn dino_loss_fp32(
    student: &[Tensor],
    teacher: &[Tensor],
    center: &Tensor,
    student_temperature: f64,
    teacher_temperature: f64,
) -> DinoLossParts {
    let targets: Vec<Tensor> = teacher
        .iter()
        .map(|t| ((t - center) / teacher_temperature).softmax(-1, Kind::Float))
        .collect();
    let log_predictions: Vec<Tensor> = student
        .iter()
        .map(|s| (s / student_temperature).log_softmax(-1, Kind::Float))
        .collect();
    let mut total: Option<Tensor> = None;
    let mut pairs = 0;
    for (teacher_index, target) in targets.iter().enumerate() {
        for (student_index, log_p) in log_predictions.iter().enumerate() {
            if student_index == teacher_index {
                continue;
            }
            let term = (-(target * log_p).sum_dim_intlist(&[1i64][..], false, Kind::Float))
                .mean(Kind::Float);
            total = Some(match total {
                Some(sum) => sum + term,
                None => term,
            });
            pairs += 1;
        }
    }
    let loss = total.expect("DINO needs at least two crops") / f64::from(pairs);
    let entropy = |p: &Tensor| {
        (-(p * p.clamp_min(1e-12).log()).sum_dim_intlist(&[1i64][..], false, Kind::Float))
            .mean(Kind::Float)
    };
    let all_targets = Tensor::cat(&targets, 0).detach(); // [2N, K]
    DinoLossParts {
        loss,
        teacher_entropy: entropy(&all_targets),
        teacher_marginal_entropy: entropy(&all_targets.mean_dim(&[0i64][..], true, Kind::Float)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::test_rows as rows;
    use tch::Device;

    fn softmax(v: &[f64]) -> Vec<f64> {
        let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = v.iter().map(|x| (x - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        exp.iter().map(|x| x / sum).collect()
    }

    #[test]
    fn dino_loss_matches_brute_force() {
        tch::manual_seed(11);
        let (n, k, crops) = (3, 5, 4);
        let options = (Kind::Float, Device::Cpu);
        let student: Vec<Tensor> = (0..crops).map(|_| Tensor::randn([n, k], options)).collect();
        let teacher: Vec<Tensor> = (0..2).map(|_| Tensor::randn([n, k], options)).collect();
        let center = Tensor::randn([1, k], options) * 0.1;
        let (tau_s, tau_t) = (0.1, 0.04);
        let got = dino_loss(&student, &teacher, &center, tau_s, tau_t);

        let c = Vec::<f64>::try_from(center.get(0).to_kind(Kind::Double)).unwrap();
        let mut total = 0.0;
        let mut pairs = 0.0;
        for (ti, t) in teacher.iter().enumerate() {
            for (si, s) in student.iter().enumerate() {
                if si == ti {
                    continue;
                }
                let mut pair = 0.0;
                for (t_row, s_row) in rows(t).iter().zip(rows(s)) {
                    let centered: Vec<f64> =
                        t_row.iter().zip(&c).map(|(x, c)| (x - c) / tau_t).collect();
                    let p_t = softmax(&centered);
                    let p_s = softmax(&s_row.iter().map(|x| x / tau_s).collect::<Vec<_>>());
                    pair -= p_t.iter().zip(&p_s).map(|(a, b)| a * b.ln()).sum::<f64>();
                }
                total += pair / n as f64;
                pairs += 1.0;
            }
        }
        let want = total / pairs;
        let loss = got.loss.double_value(&[]);
        assert!((loss - want).abs() < 1e-4, "{loss} vs {want}");
        let entropy = got.teacher_entropy.double_value(&[]);
        assert!(entropy > 0.0 && entropy < (k as f64).ln());
    }

    #[test]
    fn teacher_entropy_is_zero_when_one_dimension_dominates_and_ln_k_when_uniform() {
        let options = (Kind::Float, Device::Cpu);
        let student = vec![
            Tensor::zeros([2, 4], options),
            Tensor::zeros([2, 4], options),
        ];
        let peaked = Tensor::from_slice2(&[[100.0f32, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]);
        let center = Tensor::zeros([1, 4], options);
        let parts = dino_loss(
            &student,
            &[peaked.shallow_clone(), peaked],
            &center,
            0.1,
            0.04,
        );
        assert!(parts.teacher_entropy.double_value(&[]) < 1e-3);
        assert!(
            parts.teacher_marginal_entropy.double_value(&[]) < 1e-3,
            "every image on dimension 0"
        );
        let flat = Tensor::zeros([2, 4], options);
        let parts = dino_loss(&student, &[flat.shallow_clone(), flat], &center, 0.1, 0.04);
        assert!((parts.teacher_entropy.double_value(&[]) - 4f64.ln()).abs() < 1e-5);
        // A uniform student against a uniform teacher: cross-entropy ln 4.
        assert!((parts.loss.double_value(&[]) - 4f64.ln()).abs() < 1e-5);
    }
}
