//! Fences: what a storage target must allow for a volume now, the two rules that make them a
//! fence (a target applies only a newer fence; a node's session needs an admission), terms,
//! and the re-fence a new leader runs before it serves.

use std::fmt;

use crate::engine::Engine;
use crate::error::{CoreError, InputField, InvalidFence, InvalidInput, Problem};
use crate::ids::check_volume_id;
use crate::nodes::NodeId;
use crate::outcome::{Access, NodeName};
use crate::record::VolumeRecord;
use crate::sync::Ordering;

/// The highest term: `term << 32` must fit an epoch.
pub const MAX_TERM: u64 = u32::MAX as u64;

/// One node a fence admits, and the epoch of the change that admitted it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Admission {
    pub node: NodeName,
    pub epoch: u64,
}

/// `(epoch, access, [(node, admitted_at)])`: the nodes a storage target must allow now, in
/// attachment order (primary first). Empty after a detach. Holds at most two nodes, inline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    pub epoch: u64,
    pub access: Access,
    admitted: [Option<Admission>; 2],
}

impl Fence {
    /// A fence admitting nobody.
    pub fn empty(epoch: u64, access: Access) -> Self {
        Self { epoch, access, admitted: [None, None] }
    }

    /// A fence admitting `nodes` (at most two, each at most at `epoch`, no node twice), as a
    /// backend reads one back from its own records.
    pub fn new(epoch: u64, access: Access, nodes: Vec<Admission>) -> Result<Self, InvalidFence> {
        if nodes.len() > 2
            || nodes.iter().any(|a| a.epoch > epoch || a.epoch == 0)
            || (nodes.len() == 2 && nodes[0].node == nodes[1].node)
        {
            return Err(InvalidFence { epoch, nodes: nodes.len() });
        }
        let mut it = nodes.into_iter();
        Ok(Self { epoch, access, admitted: [it.next(), it.next()] })
    }

    /// The admitted nodes, primary first.
    pub fn nodes(&self) -> impl Iterator<Item = &Admission> {
        self.admitted.iter().flatten()
    }

    /// How many nodes are admitted: 0, 1 or 2.
    pub fn len(&self) -> usize {
        self.nodes().count()
    }

    /// Whether nobody is admitted.
    pub fn is_empty(&self) -> bool {
        self.admitted[0].is_none()
    }

    /// `node`'s admission epoch, if the fence admits it.
    pub fn admission(&self, node: &str) -> Option<u64> {
        self.nodes().find(|a| &*a.node == node).map(|a| a.epoch)
    }

    /// The storage target's rule: a fence is applied only if its epoch is higher than the last
    /// one applied (`applied`, `None` if none was), so a delayed, replayed or stale-leader
    /// update never reopens access.
    pub fn check_supersedes(&self, volume: &str, applied: Option<u64>) -> Result<(), CoreError> {
        match applied {
            Some(last) if self.epoch <= last => {
                Err(CoreError::StaleFence { volume: volume.to_owned(), epoch: self.epoch, applied: last })
            }
            _ => Ok(()),
        }
    }

    /// The I/O-session rule: `node` presenting `epoch` may use the volume only if this (the
    /// latest applied) fence admits it and `epoch` is at least its admission epoch.
    pub fn check_session(&self, volume: &str, node: &str, presented: u64) -> Result<(), CoreError> {
        match self.admission(node) {
            Some(admitted) if presented >= admitted => Ok(()),
            admitted => Err(CoreError::NotAdmitted {
                volume: volume.to_owned(),
                node: node.to_owned(),
                presented,
                admitted,
                fence_epoch: self.epoch,
            }),
        }
    }
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fence at epoch {} ({}): ", self.epoch, self.access)?;
        if self.is_empty() {
            return f.write_str("nobody");
        }
        for (i, a) in self.nodes().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{:?} admitted at {}", &*a.node, a.epoch)?;
        }
        Ok(())
    }
}

/// One volume's fence, as a re-fence returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFence {
    pub volume: String,
    pub fence: Fence,
}

impl Engine {
    /// The fence of `rec`, with its node names.
    pub(crate) fn fence_of(&self, rec: &VolumeRecord) -> Fence {
        let slot = |id: NodeId, epoch: u64| (!id.is_none()).then(|| Admission { node: self.nodes.name(id), epoch });
        let ([a, b], [ea, eb]) = (rec.nodes(), rec.admissions());
        Fence { epoch: rec.epoch, access: rec.access(), admitted: [slot(a, ea), slot(b, eb)] }
    }

    /// `volume`'s fence now; `None` for a volume the engine does not track.
    ///
    /// Locking behaviour: a shared guard on the volume's entry.
    pub fn fence(&self, volume: &str) -> Result<Option<Fence>, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        Ok(self.volumes.get(volume).map(|rec| self.fence_of(&rec)))
    }

    /// The current controller term (0 until one is set).
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }

    /// Raises the term to `term` (a term never goes down: a lower one leaves it as it is) and
    /// returns the term in force. Every change after this returns issues an epoch of at least
    /// `term << 32`. Refuses a term above [`MAX_TERM`].
    ///
    /// Locking behaviour: none; one atomic read-modify-write.
    pub fn set_term(&self, term: u64) -> Result<u64, CoreError> {
        if term > MAX_TERM {
            let problem = Problem::TooLarge { value: term, max: MAX_TERM };
            return Err(self.invalid(InvalidInput { field: InputField::Term, problem }));
        }
        // Release pairs with the Acquire load inside each entry guard: a change that reads
        // the new term also sees everything written before it was raised.
        Ok(self.term.fetch_max(term, Ordering::AcqRel).max(term))
    }

    /// Re-fences every volume the engine tracks at the current term: each epoch rises (to at
    /// least `term << 32`), nodes and admission epochs stay. A new leader runs this after
    /// [`Engine::set_term`] and hands every returned fence to its storage backend before it
    /// serves, so any late update of the old leader is refused there. Detached volumes are
    /// re-fenced too: the old leader could still issue an attach for them. A volume whose
    /// epoch is already `u64::MAX` keeps it (nothing can supersede it) and is left out.
    ///
    /// Locking behaviour: each map shard's write lock in turn, for the whole shard.
    pub fn refence(&self) -> Vec<VolumeFence> {
        let term = self.term();
        let mut fences = Vec::new();
        for mut rec in self.volumes.iter_mut() {
            if rec.refence(term).is_ok() {
                fences.push(VolumeFence { volume: rec.key().to_string(), fence: self.fence_of(&rec) });
            }
        }
        self.counters.local().refenced.add(fences.len() as u64);
        fences.sort_unstable_by(|a, b| a.volume.cmp(&b.volume));
        fences
    }
}
