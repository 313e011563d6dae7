//! An in-memory backend for tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{checked_range, slice_range, validate_key, validate_prefix, Backend};
use crate::error::{Error, Result};

/// Objects held in a sorted map in memory; puts are trivially atomic.
#[derive(Debug, Default)]
pub struct Memory {
    objects: RwLock<BTreeMap<String, Arc<Vec<u8>>>>,
}

impl Memory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Vec<u8>>>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.objects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Vec<u8>>>> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }

    fn object(&self, key: &str) -> Result<Arc<Vec<u8>>> {
        validate_key(key)?;
        self.read()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                key: key.to_string(),
            })
    }
}

impl Backend for Memory {
    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        validate_key(key)?;
        self.write()
            .insert(key.to_string(), Arc::new(data.to_vec()));
        Ok(())
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        validate_key(key)?;
        match self.write().entry(key.to_string()) {
            std::collections::btree_map::Entry::Occupied(_) => Ok(false),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Arc::new(data.to_vec()));
                Ok(true)
            }
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>> {
        Ok(self.object(key)?.as_ref().clone())
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        slice_range(key, &self.object(key)?, offset, len)
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<()> {
        let obj = self.object(key)?;
        let range = checked_range(key, &obj, offset, len)?;
        buf.clear();
        buf.extend_from_slice(&obj[range]);
        Ok(())
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        validate_key(key)?;
        Ok(self.read().get(key).map(|v| v.len() as u64))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        Ok(self
            .read()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.write().remove(key);
        Ok(())
    }
}
