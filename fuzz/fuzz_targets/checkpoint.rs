//! Hugging Face checkpoint parsing from bytes: a config JSON, an optional index JSON and one or
//! two safetensors shards, then every quantized layer and every tensor loaded.
//!
//! Input layout: byte 0 = flags (bit 0: config present, bit 1: index present, bit 2: a second
//! shard); then for each present part in the order config, index, shard "a" (and "b" when
//! flagged) a little-endian u16 length and that many bytes; the last part takes the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slimgemm::formats::checkpoint::Checkpoint;

fn take<'a>(data: &mut &'a [u8], last: bool) -> &'a [u8] {
    if last {
        return std::mem::take(data);
    }
    if data.len() < 2 {
        return std::mem::take(data);
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (part, rest) = data[2..].split_at(n);
    *data = rest;
    part
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, mut data)) = input.split_first() else { return };
    let config = (flags & 1 != 0).then(|| take(&mut data, false));
    let index = (flags & 2 != 0).then(|| take(&mut data, false));
    let two = flags & 4 != 0;
    let a = take(&mut data, !two);
    let mut shards = vec![("a.safetensors".to_string(), a.to_vec())];
    if two {
        shards.push(("b.safetensors".to_string(), take(&mut data, true).to_vec()));
    }
    let Ok(c) = Checkpoint::from_parts(config, index, shards) else { return };
    for layer in c.quantized_layers() {
        if let Ok(l) = c.load_layer(&layer) {
            l.weight.validate().expect("a loaded layer is valid");
            let w = l.weight.dequantize();
            assert_eq!((w.rows, w.cols), (l.weight.n, l.weight.k));
        }
    }
    for name in c.tensor_names() {
        let _ = c.load_matrix(name);
        let _ = c.tensor_info(name);
    }
});
