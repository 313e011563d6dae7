//! The one mixing function persistent data depends on (row checksums,
//! rowset id prefixes). It lives apart from the workload generators, which
//! are test and bench code behind the `workload` feature.

/// The splitmix64 finalizer: a fast, well-mixed 64-bit hash.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
