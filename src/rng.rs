//! Deterministic pseudo-random numbers from seeds, shared by every model and index that draws
//! (ALS's initial factors, HNSW's levels).

/// SplitMix64: a well-mixed 64-bit hash of `x`, the standard seed expander (Steele, Lea and
/// Flood, 2014); consecutive inputs give independent-looking outputs.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
