//! DLMC `.smtx` parsing from bytes, plain or gzip-compressed (detected by the magic bytes, as
//! `load_smtx_pattern` does for files), then a CSR built on the parsed pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slimgemm::formats::sparse::parse_smtx;

fuzz_target!(|data: &[u8]| {
    let parsed = if data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b {
        let gz = flate2::bufread::MultiGzDecoder::new(data);
        parse_smtx(std::io::BufReader::new(gz), "fuzz.smtx.gz")
    } else {
        parse_smtx(data, "fuzz.smtx")
    };
    if let Ok(p) = parsed {
        let csr = p.with_random_values::<f32>(1).expect("a parsed pattern is a valid CSR");
        assert_eq!(csr.nnz(), p.nnz());
    }
});
