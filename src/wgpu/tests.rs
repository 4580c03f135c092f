//! Unit tests of the shader assembly (no adapter needed): every module the backend creates
//! parses and validates with naga, and every host parameter block agrees with its WGSL struct.

use wgpu::naga;

use super::dispatch::WgslParams;
use super::pipeline::Shader;
use super::{binary, layer, lowrank, pack, quant, quant_dyn, sparse};

/// Every shader module the backend can create.
fn all_shaders() -> [&'static Shader; 19] {
    [
        &sparse::SPARSE[0],
        &sparse::SPARSE[1],
        &sparse::SPARSE_SG[0],
        &sparse::SPARSE_SG[1],
        &sparse::SPARSE24[0],
        &sparse::SPARSE24[1],
        &lowrank::LOWRANK,
        &quant::QUANT,
        &quant::QUANT_MANUAL_DOT,
        &quant::QUANT_SG,
        &quant::QUANT_SG_MANUAL_DOT,
        &quant::QUANT_SG_F16,
        &quant::QUANT_SG_F16_MANUAL_DOT,
        &quant_dyn::QUANT_DYN,
        &quant_dyn::QUANT_DYN_MANUAL_DOT,
        &binary::BINARY,
        &pack::PACK,
        &layer::LAYER[0],
        &layer::LAYER[1],
    ]
}

fn parse(shader: &Shader) -> naga::Module {
    let src = shader.text();
    let module = match naga::front::wgsl::parse_str(&src) {
        Ok(m) => m,
        Err(e) => panic!("{}: {}", shader.label(), e.emit_to_string(&src)),
    };
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    if let Err(e) = v.validate(&module) {
        panic!("{}: {}", shader.label(), e.emit_to_string(&src));
    }
    module
}

#[test]
fn every_module_validates() {
    for s in all_shaders() {
        parse(s);
    }
}

#[test]
fn crate_shaders_get_the_prelude_and_callers_shaders_do_not() {
    for s in all_shaders() {
        // `enable` directives (the fast modules') must come before any declaration.
        let text = s.text();
        let body = text.lines().skip_while(|l| l.starts_with("enable ")).collect::<Vec<_>>().join("\n");
        assert!(body.starts_with(super::pipeline::PRELUDE.trim_end()), "{}", s.label());
    }
    assert!(sparse::SPARSE[0].text().contains("const F16: bool = false;"));
    assert!(sparse::SPARSE[1].text().contains("const F16: bool = true;"));
    const SRC: &str = "@compute @workgroup_size(1) fn main() {}";
    static OWN: Shader = Shader::checked("own", SRC);
    assert_eq!(OWN.text(), SRC);
}

fn scalar_name(module: &naga::Module, ty: naga::Handle<naga::Type>) -> &'static str {
    match module.types[ty].inner {
        naga::TypeInner::Scalar(naga::Scalar { kind: naga::ScalarKind::Uint, width: 4 }) => "u32",
        naga::TypeInner::Scalar(naga::Scalar { kind: naga::ScalarKind::Sint, width: 4 }) => "i32",
        naga::TypeInner::Scalar(naga::Scalar { kind: naga::ScalarKind::Float, width: 4 }) => "f32",
        _ => "not a 32-bit scalar",
    }
}

/// The WGSL struct `P::WGSL_NAME` in `shader` has P's fields, in order, with P's types and
/// offsets, and P's size.
fn agrees<P: WgslParams>(shader: &Shader) {
    let module = parse(shader);
    let what = format!("{} in {}", P::WGSL_NAME, shader.label());
    let Some((_, ty)) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(P::WGSL_NAME)) else {
        panic!("{what}: no such struct");
    };
    let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{what}: not a struct") };
    let fields: Vec<(String, &str, u32)> =
        members.iter().map(|m| (m.name.clone().unwrap_or_default(), scalar_name(&module, m.ty), m.offset)).collect();
    let want: Vec<(String, &str, u32)> = P::FIELDS.iter().enumerate().map(|(i, &(n, t))| (n.to_string(), t, 4 * i as u32)).collect();
    assert_eq!(fields, want, "{what}");
    assert_eq!(*span as usize, std::mem::size_of::<P>(), "{what}: size");
}

#[test]
fn params_agree_with_wgsl() {
    for s in &sparse::SPARSE {
        agrees::<sparse::SpmmParams>(s);
        agrees::<sparse::SddmmParams>(s);
        agrees::<sparse::GatherParams>(s);
    }
    for s in &sparse::SPARSE_SG {
        agrees::<sparse::SpmmParams>(s);
        agrees::<sparse::SpmmSgParams>(s);
    }
    agrees::<lowrank::GemmParams>(&lowrank::LOWRANK);
    agrees::<lowrank::FusedParams>(&lowrank::LOWRANK);
    agrees::<lowrank::SplitParams>(&lowrank::LOWRANK);
    agrees::<quant::QuantParams>(&quant::QUANT);
    agrees::<quant::GemmParams>(&quant::QUANT);
    agrees::<quant::GemmParams>(&quant::QUANT_SG_F16);
    agrees::<binary::BinarizeParams>(&binary::BINARY);
    agrees::<binary::XParams>(&binary::BINARY);
    agrees::<pack::PackParams>(&pack::PACK);
    for s in &layer::LAYER {
        agrees::<layer::TransposeParams>(s);
    }
}
