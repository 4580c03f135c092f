//! The compression planner (`slimgemm::plan`): on layers with known structure the picks are
//! predictable (an exactly low-rank weight takes low rank at its true rank, an already sparse
//! one CSR, a Gaussian one a quantized format), every pick is within budget, every format's
//! `PlannedLinear` computes what the planner's error model says, the written model (feature
//! `hf`) reloads and reproduces the measured errors, and bad input is a clear error.

use crate::common;

use slimgemm::formats::{Int8Weights, LowRank, Matrix};
use slimgemm::plan::{gaussian_activations, ErrorMetric, FormatFamily, Objective, PlanOptions, PlannedLinear, Planner, Timing, Variant};
use slimgemm::{DType, Device, Weight};

fn quick_timing() -> Timing {
    Timing { warmup: 1, min_iters: 1, max_iters: 3, target_s: 0.005 }
}

fn opts(budget: f64) -> PlanOptions {
    PlanOptions { budget, tokens: vec![1, 16], calib_tokens: 32, timing: quick_timing(), ..PlanOptions::default() }
}

/// `U V^T` of rank `r`, exactly.
fn low_rank(m: usize, n: usize, r: usize, seed: u64) -> Matrix<f32> {
    LowRank::<f32>::random(m, n, r, seed).unwrap().to_dense().unwrap()
}

/// Gaussian values at `density` of the positions, exact zeros elsewhere.
fn sparse(m: usize, n: usize, density: f64, seed: u64) -> Matrix<f32> {
    let g = gaussian_activations(m, n, seed).unwrap();
    let mask = slimgemm::formats::Csr::<f32>::random(m, n, density, seed + 1).unwrap().to_dense();
    let data = g.data.iter().zip(&mask.data).map(|(v, k)| if *k != 0.0 { *v } else { 0.0 }).collect();
    Matrix::new(m, n, data).unwrap()
}

fn gaussian(m: usize, n: usize, seed: u64) -> Matrix<f32> {
    gaussian_activations(m, n, seed).unwrap()
}

/// `‖a − b‖ / ‖b‖` in f64.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// `x w^T` in f64.
fn matmul_t(x: &Matrix<f32>, w: &Matrix<f32>) -> Matrix<f32> {
    let mut y = vec![0f32; x.rows * w.rows];
    for i in 0..x.rows {
        for j in 0..w.rows {
            let mut s = 0f64;
            for k in 0..x.cols {
                s += x.data[i * x.cols + k] as f64 * w.data[j * w.cols + k] as f64;
            }
            y[i * w.rows + j] = s as f32;
        }
    }
    Matrix::new(x.rows, w.rows, y).unwrap()
}

fn assert_picks_within_budget(plan: &slimgemm::plan::LayerPlan, o: &PlanOptions) {
    for c in &plan.candidates {
        assert_eq!(c.within_budget, c.error(o.metric) <= o.budget, "{}: {} within_budget flag", plan.name, c.variant);
    }
    for obj in [Objective::Speed, Objective::Size] {
        let p = plan.pick(obj);
        assert!(
            p.within_budget && p.error(o.metric) <= o.budget,
            "{}: {obj:?} pick {} has error {} > {}",
            plan.name,
            p.variant,
            p.error(o.metric),
            o.budget
        );
    }
    assert_eq!(plan.candidates[0].variant, Variant::Dense);
}

#[test]
fn picks_follow_the_structure_of_the_weight() {
    let dev = Device::cpu();
    let o = opts(0.02);
    let mut planner = Planner::new(&dev, o.clone()).unwrap();

    let lr = low_rank(128, 192, 6, 1);
    let plan = planner.plan("low_rank", &lr, None).unwrap();
    assert_picks_within_budget(&plan, &o);
    assert_eq!(plan.pick(Objective::Size).variant, Variant::LowRank { rank: 6 }, "{plan:#?}");
    assert_eq!(plan.pick(Objective::Speed).variant, Variant::LowRank { rank: 6 });

    let sp = sparse(128, 192, 0.01, 2);
    let nnz0 = sp.data.iter().filter(|v| **v != 0.0).count();
    let plan = planner.plan("sparse", &sp, None).unwrap();
    assert_picks_within_budget(&plan, &o);
    let pick = plan.pick(Objective::Size);
    match pick.variant {
        Variant::Csr { nnz } => assert!(nnz <= nnz0, "CSR keeps {nnz} > the {nnz0} non-zeros"),
        v => panic!("the sparse layer picked {v}: {plan:#?}"),
    }
    assert!(matches!(plan.pick(Objective::Speed).variant, Variant::Csr { .. }), "{:?}", plan.pick(Objective::Speed).variant);

    let g = gaussian(128, 256, 3);
    let plan = planner.plan("gaussian", &g, None).unwrap();
    assert_picks_within_budget(&plan, &o);
    assert_eq!(plan.pick(Objective::Size).variant, Variant::Int8, "{plan:#?}");
    // The Gaussian layer is not low rank: the SVD vectors are not even computed.
    assert!(plan.notes.iter().any(|n| n.starts_with("lowrank:")), "{:?}", plan.notes);

    // A looser budget admits int4.
    let o = opts(0.15);
    let mut planner = Planner::new(&dev, o.clone()).unwrap();
    let plan = planner.plan("gaussian", &g, None).unwrap();
    assert_picks_within_budget(&plan, &o);
    assert!(matches!(plan.pick(Objective::Size).variant, Variant::Int4 { .. }), "{:?}", plan.pick(Objective::Size).variant);
}

#[test]
fn weight_metric_and_f16_and_binary() {
    let dev = Device::cpu();
    let o = PlanOptions { metric: ErrorMetric::Weight, dtype: DType::F16, formats: FormatFamily::ALL.to_vec(), ..opts(0.05) };
    let mut planner = Planner::new(&dev, o.clone()).unwrap();
    let w = low_rank(64, 96, 3, 4);
    let plan = planner.plan("lr16", &w, None).unwrap();
    assert_picks_within_budget(&plan, &o);
    assert_eq!(plan.pick(Objective::Size).variant, Variant::LowRank { rank: 3 });
    assert!(plan.candidates.iter().any(|c| c.variant == Variant::Binary && !c.within_budget));
    // The weight metric bisects CSR exactly: keeping one value fewer leaves the budget.
    let sp = sparse(64, 96, 0.05, 5);
    let plan = planner.plan("sp16", &sp, None).unwrap();
    let csr = plan.candidates.iter().find(|c| matches!(c.variant, Variant::Csr { .. })).unwrap();
    let Variant::Csr { nnz } = csr.variant else { unreachable!() };
    assert!(csr.within_budget);
    let fewer = Weight::compress(&sp, Variant::Csr { nnz: nnz - 1 }).unwrap().to_dense().unwrap();
    assert!(rel_err(&fewer.data, &sp.data) > 0.05, "nnz {nnz} is not the smallest within budget");
}

/// Every format's layer computes `x Ŵ^T` with the activations the planner's error model
/// uses, on the CPU and on wgpu; errors recomputed here match the planner's.
#[test]
fn planned_layers_compute_what_the_planner_measured() {
    let mut devs = vec![Device::cpu()];
    devs.extend(common::wgpu_device());
    let w = sparse(48, 64, 0.3, 6);
    let o = PlanOptions { formats: FormatFamily::ALL.to_vec(), ..opts(10.0) };
    let x = gaussian_activations(32, 64, 7).unwrap();
    let y = matmul_t(&x, &w);
    for dev in &devs {
        let mut planner = Planner::new(dev, o.clone()).unwrap();
        let plan = planner.plan("all", &w, Some(&x)).unwrap();
        let families: Vec<&str> = plan.candidates.iter().map(|c| c.variant.family_name()).collect();
        for f in ["dense", "csr", "2:4", "lowrank", "int8", "int4", "binary"] {
            assert!(families.contains(&f), "{f} missing from {families:?}");
        }
        for c in &plan.candidates {
            let pw = c.weight.as_ref().expect("every candidate is within a budget of 10");
            let eff = pw.to_dense().unwrap();
            assert!((rel_err(&eff.data, &w.data) - c.weight_err).abs() <= 1e-6 + 1e-4 * c.weight_err, "{}: weight error", c.variant);
            let bias: Vec<f32> = (0..48).map(|j| j as f32 * 0.01).collect();
            let layer = PlannedLinear::new(dev, pw, Some(&bias), DType::F32).unwrap();
            assert_eq!(layer.variant(), c.variant);
            assert_eq!((layer.out_features(), layer.in_features()), (48, 64));
            assert!(layer.bytes_on_device() > 0);
            let got = dev.download_f32(&layer.forward(&dev.upload_matrix(&x).unwrap()).unwrap()).unwrap();
            let unbiased: Vec<f32> = got.data.iter().enumerate().map(|(p, v)| v - bias[p % 48]).collect();
            let e = rel_err(&unbiased, &y.data);
            assert!(
                (e - c.output_err).abs() <= 1e-4 + 1e-3 * c.output_err,
                "{} on {}: forward error {e} vs planned {}",
                c.variant,
                dev.kind().name(),
                c.output_err
            );
        }
    }
}

#[test]
fn wgpu_plan_times_on_the_adapter_and_says_so() {
    let Some(dev) = common::wgpu_device() else { return };
    let o = opts(0.02);
    let mut planner = Planner::new(&dev, o.clone()).unwrap();
    let plan = planner.plan("lr", &low_rank(64, 128, 4, 8), None).unwrap();
    assert_picks_within_budget(&plan, &o);
    assert_eq!(plan.pick(Objective::Size).variant, Variant::LowRank { rank: 4 });
    assert!(plan.pick(Objective::Size).times.as_ref().is_some_and(|t| t.len() == 2 && t.iter().all(|s| *s > 0.0)));
    if dev.name().to_ascii_lowercase().contains("llvmpipe") {
        assert!(slimgemm::plan::timing_note(&dev).is_some_and(|n| n.contains("say nothing about GPU speed")));
    }
    assert!(slimgemm::plan::timing_note(&Device::cpu()).is_some());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dev = Device::cpu();
    for budget in [0.0, -0.1, f64::NAN, f64::INFINITY] {
        let e = Planner::new(&dev, opts(budget)).unwrap_err().to_string();
        assert!(e.contains("budget"), "{e}");
    }
    let e = FormatFamily::parse_list("csr,int3").unwrap_err().to_string();
    assert!(e.contains("unknown format `int3`") && e.contains("lowrank"), "{e}");
    assert!(FormatFamily::parse_list(" , ").is_err());
    assert_eq!(FormatFamily::parse_list("2:4,sparse24,INT8").unwrap(), vec![FormatFamily::Sparse24, FormatFamily::Int8]);
    assert!("fast".parse::<Objective>().is_err());
    assert!("input".parse::<ErrorMetric>().is_err());
    assert!(Planner::new(&dev, PlanOptions { tokens: vec![], ..opts(0.1) }).is_err());
    assert!(Planner::new(&dev, PlanOptions { tokens: vec![0], ..opts(0.1) }).is_err());
    assert!(Planner::new(&dev, PlanOptions { formats: vec![], ..opts(0.1) }).is_err());
    assert!(Planner::new(&dev, PlanOptions { dtype: DType::I8, ..opts(0.1) }).is_err());
    assert!(Planner::new(&dev, PlanOptions { int4_groups: vec![16], ..opts(0.1) }).is_err());
    let mut planner = Planner::new(&dev, opts(0.1)).unwrap();
    let mut w = gaussian(8, 16, 1);
    w.data[5] = f32::NAN;
    assert!(planner.plan("nan", &w, None).unwrap_err().to_string().contains("not finite"));
    let w = gaussian(8, 16, 1);
    let e = planner.plan("calib", &w, Some(&gaussian(4, 12, 2))).unwrap_err().to_string();
    assert!(e.contains("in_features = 16"), "{e}");
    assert!(Weight::compress(&w, Variant::Csr { nnz: 0 }).is_err());
    // Weight-only int8 is a layer format the planner has no variant for.
    let q = Int8Weights::quantize(&gaussian(8, 32, 3), 32).unwrap();
    let wo = Weight::Int8WeightOnly(q.clone());
    assert!(wo.variant().unwrap_err().to_string().contains("weight-only int8"));
    let e = PlannedLinear::new(&dev, &wo, None, DType::F32).unwrap_err().to_string();
    assert!(e.contains("no planner variant"), "{e}");
    assert_eq!(wo.to_dense().unwrap(), q.dequantize());
}

#[cfg(feature = "hf")]
mod hf {
    use super::*;
    use slimgemm::plan::io::{CompressedModel, CompressedWriter, DenseModel};

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("slimgemm-plan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Plans three known layers, writes the picks, reloads them: weights, biases, the
    /// planner's errors (recomputed from the loaded layers on the CPU and on wgpu) all agree.
    #[test]
    fn written_model_reloads_and_reproduces_the_errors() {
        let dir = tmp("reload");
        let dev = Device::cpu();
        let o = PlanOptions { formats: FormatFamily::ALL.to_vec(), ..opts(0.02) };
        let mut planner = Planner::new(&dev, o.clone()).unwrap();
        let layers = [
            ("a.low_rank.weight", low_rank(64, 96, 5, 11)),
            ("b.sparse.weight", sparse(64, 96, 0.02, 12)),
            ("c.gauss.weight", gaussian(64, 96, 13)),
        ];
        let mut writer = CompressedWriter::new();
        let mut planned = Vec::new();
        for (name, w) in &layers {
            let mut plan = planner.plan(name, w, None).unwrap();
            let c = plan.pick(Objective::Size).clone();
            let pw = plan.take_weight(Objective::Size).unwrap();
            writer.add_layer(name, &pw, &[64, 96], Some((c.weight_err, c.output_err))).unwrap();
            planned.push((name.to_string(), w.clone(), c, planner.calibration(96).unwrap()));
        }
        writer.set_metadata("budget", "0.02");
        writer.write(dir.join("model.safetensors")).unwrap();

        let model = CompressedModel::open(&dir).unwrap();
        assert_eq!(model.metadata("budget"), Some("0.02"));
        assert_eq!(model.layers().len(), 3);
        let mut devs = vec![Device::cpu()];
        devs.extend(common::wgpu_device());
        for (name, w, c, x) in &planned {
            let l = model.layer(name).unwrap();
            assert_eq!(l.weight.variant().unwrap(), c.variant);
            assert_eq!(l.weight_err, Some(c.weight_err));
            let eff = l.weight.to_dense().unwrap();
            assert!((rel_err(&eff.data, &w.data) - c.weight_err).abs() <= 1e-9 + 1e-6 * c.weight_err, "{name}: weight error");
            let y = matmul_t(x, w);
            for dev in &devs {
                let layer = l.to_device(dev, DType::F32).unwrap();
                let got = dev.download_f32(&layer.forward(&dev.upload_matrix(x).unwrap()).unwrap()).unwrap();
                let e = rel_err(&got.data, &y.data);
                assert!((e - c.output_err).abs() <= 1e-4 + 1e-3 * c.output_err, "{name} on {}: {e} vs {}", dev.kind().name(), c.output_err);
                assert!(e <= 0.02 * 1.001, "{name}: reloaded output error {e} over budget");
            }
        }
        let kinds: Vec<&str> = planned.iter().map(|p| p.2.variant.family_name()).collect();
        assert_eq!(kinds, ["lowrank", "csr", "int8"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tmp("bad");
        let e = DenseModel::open(dir.join("missing.safetensors")).unwrap_err().to_string();
        assert!(e.contains("missing.safetensors") && e.contains("cannot read"), "{e}");
        std::fs::write(dir.join("junk.safetensors"), b"not a safetensors file").unwrap();
        let e = DenseModel::open(dir.join("junk.safetensors")).unwrap_err().to_string();
        assert!(e.contains("not a valid safetensors file"), "{e}");
        let empty = tmp("empty");
        assert!(DenseModel::open(&empty).unwrap_err().to_string().contains("no .safetensors file"));
        // A dense file is no compressed model.
        let mut w = CompressedWriter::new();
        w.add_layer("x.weight", &Weight::Dense(gaussian(4, 8, 1)), &[4, 8], None).unwrap();
        w.write(dir.join("ok.safetensors")).unwrap();
        let m = DenseModel::open(dir.join("ok.safetensors")).unwrap();
        assert_eq!(m.tensors()[0].matrix, Some((4, 8)));
        let back = CompressedModel::open(dir.join("ok.safetensors")).unwrap();
        assert_eq!(back.layer("x.weight").unwrap().weight.to_dense().unwrap(), gaussian(4, 8, 1));
        // Weight-only int8 is not part of the layout, and writes nothing.
        let mut w = CompressedWriter::new();
        let wo = Weight::Int8WeightOnly(Int8Weights::quantize(&gaussian(4, 32, 1), 32).unwrap());
        let e = w.add_layer("wo.weight", &wo, &[4, 32], None).unwrap_err().to_string();
        assert!(e.contains("'wo.weight': weight-only int8 weights are not part of layout 1"), "{e}");
        assert!(w.tensor_names().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&empty);
    }
}
