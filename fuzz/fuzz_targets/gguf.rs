//! GGUF parsing from bytes, then every tensor loaded (slimgemm format) and dequantized (ggml
//! reference): errors are fine, panics are not, and both paths must agree bit for bit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slimgemm::formats::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else { return };
    let _ = f.metadata().iter().map(|(k, v)| (k.len(), v.type_id())).count();
    for t in f.tensors() {
        let bytes = f.tensor_bytes(&t.name).expect("listed tensors have bytes");
        assert_eq!(bytes.len() as u64, t.n_bytes);
        let loaded = f.load(&t.name);
        let reference = f.dequantize(&t.name);
        if let (Ok(a), Ok(b)) = (&loaded, &reference) {
            let a = a.to_f32();
            assert_eq!((a.rows, a.cols), (b.rows, b.cols));
            for (x, y) in a.data.iter().zip(&b.data) {
                assert_eq!(x.to_bits(), y.to_bits(), "{}: load and dequantize disagree", t.name);
            }
        }
    }
});
