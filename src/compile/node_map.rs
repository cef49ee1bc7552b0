//! Per-node state stored by node index: a plan's call recipes, a run's records and
//! results.

use petgraph::graph::NodeIndex;

/// A map from the nodes of a run's plan to `T`, stored by node index. The plan's
/// indices are dense and small, so a vector takes less memory than a hash map and no
/// hashing (SipHash was about 6% of the scheduler's instructions).
#[derive(Clone, Debug)]
pub struct NodeMap<T> {
    slots: Vec<Option<T>>,
}

impl<T> Default for NodeMap<T> {
    fn default() -> Self {
        NodeMap { slots: Vec::new() }
    }
}

impl<T> NodeMap<T> {
    /// The value of `node`, if it has one.
    pub fn get(&self, node: NodeIndex) -> Option<&T> {
        self.slots.get(node.index()).and_then(Option::as_ref)
    }

    /// Whether `node` has a value.
    pub fn contains(&self, node: NodeIndex) -> bool {
        self.get(node).is_some()
    }

    /// Takes the value of `node` out, leaving it without one.
    pub fn take(&mut self, node: NodeIndex) -> Option<T> {
        self.slots.get_mut(node.index()).and_then(Option::take)
    }

    /// Every value, in index order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Gives back the room made beyond the last node with a slot.
    pub fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
    }

    /// Sets the value of `node`.
    pub fn insert(&mut self, node: NodeIndex, value: T) {
        *self.slot(node) = Some(value);
    }

    /// The value of `node`, set to the default first if it has none.
    pub fn get_or_default(&mut self, node: NodeIndex) -> &mut T
    where
        T: Default,
    {
        self.slot(node).get_or_insert_with(T::default)
    }

    /// Every node that has a value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeIndex, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.as_ref().map(|value| (NodeIndex::new(index), value)))
    }

    /// Makes room for nodes up to `count` exactly: grown one node at a time the vector
    /// doubles, and a run of 10,000 nodes would hold 16,384 slots.
    pub fn reserve_for(&mut self, count: usize) {
        if let Some(more) = count.checked_sub(self.slots.len()) {
            self.slots.reserve_exact(more);
        }
    }

    fn slot(&mut self, node: NodeIndex) -> &mut Option<T> {
        let index = node.index();
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        // In bounds: the vector was just grown past `index`. Node indices come from
        // the plan, never from input.
        &mut self.slots[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_by_node_and_listed_in_index_order() {
        let mut map: NodeMap<u32> = NodeMap::default();
        assert_eq!(map.get(NodeIndex::new(3)), None);
        map.insert(NodeIndex::new(5), 50);
        *map.get_or_default(NodeIndex::new(2)) += 7;
        *map.get_or_default(NodeIndex::new(5)) += 1;
        assert_eq!(map.get(NodeIndex::new(5)), Some(&51));
        assert_eq!(map.get(NodeIndex::new(9)), None);
        assert!(map.contains(NodeIndex::new(2)) && !map.contains(NodeIndex::new(3)));
        let listed: Vec<_> = map
            .iter()
            .map(|(node, value)| (node.index(), *value))
            .collect();
        assert_eq!(listed, vec![(2, 7), (5, 51)]);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), [7, 51]);
        assert_eq!(map.take(NodeIndex::new(5)), Some(51));
        assert_eq!(map.take(NodeIndex::new(5)), None);
        assert_eq!(map.take(NodeIndex::new(900)), None);
        assert!(!map.contains(NodeIndex::new(5)));
    }

    #[test]
    fn room_made_for_a_count_is_not_doubled() {
        let mut map: NodeMap<u64> = NodeMap::default();
        map.reserve_for(10_001);
        for index in 0..10_001 {
            map.insert(NodeIndex::new(index), 1);
        }
        assert_eq!(map.slots.capacity(), 10_001);
        map.reserve_for(5);
        assert_eq!(map.slots.capacity(), 10_001, "never shrinks");
    }
}
