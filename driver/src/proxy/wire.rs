//! Edits of a protobuf message at the wire level: removing entries of a map field by key and
//! appending entries or messages, leaving every other byte as it came (unknown fields included).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{decode_key, decode_varint, WireType};
use prost::{DecodeError, Message};

/// One entry of a `map<string, string>` field, as the wire carries it.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct MapEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Why a message's bytes could not be edited.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("groups, which CSI does not use, are not supported")]
    Group,
    #[error("a field runs past the end of the message")]
    Truncated,
}

/// Skips the value of a field of `wire` type in `buf`.
fn skip(wire: WireType, buf: &mut &[u8]) -> Result<(), WireError> {
    let len = match wire {
        WireType::Varint => return decode_varint(buf).map(drop).map_err(WireError::from),
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::LengthDelimited => usize::try_from(decode_varint(buf)?).unwrap_or(usize::MAX),
        WireType::StartGroup | WireType::EndGroup => return Err(WireError::Group),
    };
    if buf.remaining() < len {
        return Err(WireError::Truncated);
    }
    buf.advance(len);
    Ok(())
}

/// `msg` without the entries of map field `field` whose key `drop` selects.
pub fn strip_map(msg: &[u8], field: u32, drop: impl Fn(&str) -> bool) -> Result<Bytes, WireError> {
    let mut out = BytesMut::with_capacity(msg.len());
    let mut rest = msg;
    while !rest.is_empty() {
        let start = rest;
        let (tag, wire) = decode_key(&mut rest)?;
        let mut value = rest;
        skip(wire, &mut rest)?;
        let whole = &start[..start.len() - rest.len()];
        if tag == field && wire == WireType::LengthDelimited {
            let len = usize::try_from(decode_varint(&mut value)?).unwrap_or(usize::MAX);
            let entry = MapEntry::decode(value.get(..len).ok_or(WireError::Truncated)?)?;
            if drop(&entry.key) {
                continue;
            }
        }
        out.put_slice(whole);
    }
    Ok(out.freeze())
}

/// `msg` with `entries` appended to map field `field` (a later entry of a key wins, by the
/// protobuf merge rule; callers make sure none repeats a key).
pub fn append_map<'a>(msg: &[u8], field: u32, entries: impl IntoIterator<Item = (&'a String, &'a String)>) -> Bytes {
    let mut out = BytesMut::from(msg);
    for (key, value) in entries {
        let entry = MapEntry { key: key.clone(), value: value.clone() };
        prost::encoding::message::encode(field, &entry, &mut out);
    }
    out.freeze()
}

/// `msg` with `item` appended to repeated message field `field`.
pub fn append_message(msg: &[u8], field: u32, item: &impl Message) -> Bytes {
    let mut out = BytesMut::from(msg);
    prost::encoding::message::encode(field, item, &mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message;

    use super::*;
    use crate::csi::NodeStageVolumeRequest;

    /// A stage request with two context keys, and a field (99) this build's proto does not know.
    fn request() -> Vec<u8> {
        let req = NodeStageVolumeRequest {
            volume_id: "v".into(),
            publish_context: HashMap::from([
                ("device".to_owned(), "/dev/x".to_owned()),
                ("tether.io/epoch".to_owned(), "7".to_owned()),
            ]),
            staging_target_path: "/stage".into(),
            ..Default::default()
        };
        let mut bytes = req.encode_to_vec();
        prost::encoding::string::encode(99, &"unknown to Tether".to_owned(), &mut bytes);
        bytes
    }

    #[test]
    fn stripping_drops_only_the_selected_entries_and_keeps_unknown_fields() {
        let original = request();
        let stripped = strip_map(&original, 2, |k| k.starts_with("tether.io/")).unwrap();
        let req = NodeStageVolumeRequest::decode(stripped.clone()).unwrap();
        assert_eq!(req.publish_context, HashMap::from([("device".to_owned(), "/dev/x".to_owned())]));
        assert_eq!((req.volume_id.as_str(), req.staging_target_path.as_str()), ("v", "/stage"));
        let tail = b"unknown to Tether";
        assert!(stripped.windows(tail.len()).any(|w| w == tail), "field 99 is still there");
        assert_eq!(strip_map(&original, 2, |_| false).unwrap(), original, "nothing selected: the same bytes");
    }

    #[test]
    fn appending_adds_entries_and_a_truncated_message_is_refused() {
        let extra = ("tether.io/node".to_owned(), "a".to_owned());
        let grown = append_map(&request(), 2, [(&extra.0, &extra.1)]);
        let req = NodeStageVolumeRequest::decode(grown).unwrap();
        assert_eq!(req.publish_context.len(), 3);
        let original = request();
        let cut = &original[..original.len() - 3];
        assert!(matches!(strip_map(cut, 2, |_| false), Err(WireError::Truncated)));
    }
}
