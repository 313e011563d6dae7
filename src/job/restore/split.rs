//! Each backend's share of a backup's manifest for DOWNLOADING.

use std::collections::HashMap;

use tabletsnap_transfer::{Manifest, TabletEntry};

use crate::backend::RestoreTarget;

/// Splits `manifest` into one part per entry of `targets` (a backend and its
/// replicas), each holding the entries of its replicas' source tablets.
/// Entries move into their part; only a tablet restored to several backends
/// is copied, once per extra backend. So the coordinator never holds the
/// manifest twice, however many tablets it lists.
pub(super) fn split_manifest(
    manifest: Manifest,
    targets: &[(u32, Vec<RestoreTarget>)],
) -> Vec<Manifest> {
    let mut owners: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, (_, list)) in targets.iter().enumerate() {
        for t in list {
            let o = owners.entry(t.source_tablet_id).or_default();
            if o.last() != Some(&i) {
                o.push(i);
            }
        }
    }
    let mut parts: Vec<Vec<TabletEntry>> = targets
        .iter()
        .map(|(_, list)| Vec::with_capacity(list.len()))
        .collect();
    for entry in manifest.tablets {
        let Some(o) = owners.get(&entry.tablet_id) else {
            continue;
        };
        if let Some((last, rest)) = o.split_last() {
            for i in rest {
                parts[*i].push(entry.clone());
            }
            parts[*last].push(entry);
        }
    }
    parts
        .into_iter()
        .map(|tablets| Manifest {
            packs: manifest.packs.clone(),
            tablets,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(src: u64) -> RestoreTarget {
        RestoreTarget {
            source_tablet_id: src,
            tablet_id: src + 100,
            schema_hash: 1,
            table_id: 1,
            partition_id: 1,
            overwrite: false,
            dir: None,
            version: None,
            catch_up_from: None,
        }
    }

    fn entry(id: u64) -> TabletEntry {
        TabletEntry {
            tablet_id: id,
            dirs: Vec::new(),
            files: Vec::new(),
        }
    }

    #[test]
    fn each_backend_gets_exactly_its_tablets() {
        let m = Manifest {
            packs: vec!["p/0.pack".into()],
            tablets: (1..=5).map(entry).collect(),
        };
        // Tablet 2 has replicas on both backends; 5 is on none.
        let targets = vec![
            (0, vec![target(1), target(2)]),
            (1, vec![target(2), target(3), target(4)]),
        ];
        let parts = split_manifest(m, &targets);
        let ids = |m: &Manifest| m.tablets.iter().map(|t| t.tablet_id).collect::<Vec<_>>();
        assert_eq!(parts.len(), 2);
        assert_eq!(ids(&parts[0]), vec![1, 2]);
        assert_eq!(ids(&parts[1]), vec![2, 3, 4]);
        assert!(parts
            .iter()
            .all(|p| p.packs == vec!["p/0.pack".to_string()]));
    }
}
