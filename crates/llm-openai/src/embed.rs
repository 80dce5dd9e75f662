//! Decoding of `POST /embeddings` answers: vectors put in input order by
//! each item's `index`, base64 or float arrays, usage.

use llm_core::embed::vector_from_bytes;
use llm_core::ProviderError;

use crate::error::payload_error;
use crate::wire::{EmbeddingList, WireVector};

/// The vectors of one answer, in input order, and its `prompt_tokens`.
///
/// Each item goes to the input its `index` names (the item's position when
/// it has none), whatever the order of `data`. Another count of vectors than
/// `expected`, an index out of range or given twice, a missing vector, bad
/// base64 or base64 that is not whole `f32`s are decode errors; an `error`
/// payload without `data` is the error it describes.
pub(crate) fn vectors(
    provider: &str,
    list: EmbeddingList,
    expected: usize,
) -> Result<(Vec<Vec<f32>>, u64), ProviderError> {
    let EmbeddingList { data, usage, error } = list;
    if data.is_empty() && expected > 0 {
        if let Some(e) = error {
            return Err(payload_error(provider, e));
        }
    }
    if data.len() != expected {
        return Err(ProviderError::decode(
            provider,
            format!("{} vectors for {expected} inputs", data.len()),
        ));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
    for (position, item) in data.into_iter().enumerate() {
        let index = match item.index {
            Some(i) => usize::try_from(i).unwrap_or(usize::MAX),
            None => position,
        };
        let Some(slot) = slots.get_mut(index) else {
            return Err(ProviderError::decode(
                provider,
                format!("vector index {index} is out of range for {expected} inputs"),
            ));
        };
        if slot.is_some() {
            return Err(ProviderError::decode(
                provider,
                format!("vector index {index} appears twice"),
            ));
        }
        let vector = match item.embedding {
            Some(WireVector::Floats(v)) => v,
            Some(WireVector::Base64(text)) => decode_base64(&text)
                .and_then(|bytes| vector_from_bytes(&bytes))
                .ok_or_else(|| {
                    ProviderError::decode(
                        provider,
                        format!("vector {index} is not base64 of little-endian f32 values"),
                    )
                })?,
            None => {
                return Err(ProviderError::decode(
                    provider,
                    format!("item {position} has no `embedding`"),
                ))
            }
        };
        *slot = Some(vector);
    }
    // Every slot is filled: as many items as slots, each in its own.
    let vectors = slots.into_iter().flatten().collect();
    Ok((vectors, usage.map_or(0, |u| u.prompt_tokens)))
}

/// Standard base64 (`A–Z a–z 0–9 + /`), with or without `=` padding; `None`
/// for any other character, a misplaced `=`, an impossible length or
/// non-zero trailing bits.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    // Some compatible servers leave the padding out.
    const LENIENT_PADDING: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT_PADDING.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::embed::vector_to_bytes;
    use llm_core::ErrorClass;

    /// Standard base64 encoding, to check the decoder against.
    fn encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn base64_round_trips_every_length() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..64 {
            let encoded = encode(&data[..len]);
            assert_eq!(
                decode_base64(&encoded).as_deref(),
                Some(&data[..len]),
                "{encoded}"
            );
            // Unpadded, as some servers send it.
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(
                decode_base64(unpadded).as_deref(),
                Some(&data[..len]),
                "{unpadded}"
            );
        }
        assert_eq!(decode_base64("TWFu").as_deref(), Some(&b"Man"[..]));
        assert_eq!(decode_base64("TWE=").as_deref(), Some(&b"Ma"[..]));
        assert_eq!(decode_base64("TQ==").as_deref(), Some(&b"M"[..]));
    }

    #[test]
    fn bad_base64_is_refused() {
        for bad in [
            "T===",     // three `=`
            "TWFuT",    // a lone sixth character
            "TW Fu",    // whitespace
            "TWF-",     // URL-safe alphabet
            "TR==",     // non-zero trailing bits
            "TQ==TWFu", // `=` inside
            "TWFu\n",   // newline
            "TWFu====", // too much padding
        ] {
            assert_eq!(decode_base64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn f32_vectors_survive_base64_exactly() {
        let v = vec![
            0.0023064255f32,
            -0.009327292,
            f32::MIN_POSITIVE,
            -0.0,
            1e-45,
        ];
        let text = encode(&vector_to_bytes(&v));
        let list: EmbeddingList = serde_json::from_str(&format!(
            r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":"{text}"}}],"model":"m","usage":{{"prompt_tokens":3,"total_tokens":3}}}}"#
        ))
        .unwrap();
        let (got, tokens) = vectors("p", list, 1).unwrap();
        assert_eq!(tokens, 3);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got[0]), bits(&v));
    }

    fn list(json: &str) -> EmbeddingList {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn items_go_to_their_index() {
        let l = list(
            r#"{"data":[{"index":2,"embedding":[3.0]},{"index":0,"embedding":[1.0]},{"index":1,"embedding":"AAAAQA=="}]}"#,
        );
        let (v, tokens) = vectors("p", l, 3).unwrap();
        assert_eq!(v, vec![vec![1.0], vec![2.0], vec![3.0]]);
        assert_eq!(tokens, 0, "no usage reported");
        // Without indexes the order of `data` is the order of the inputs.
        let l = list(r#"{"data":[{"embedding":[1.0]},{"embedding":[2.0]}]}"#);
        assert_eq!(vectors("p", l, 2).unwrap().0, vec![vec![1.0], vec![2.0]]);
    }

    #[test]
    fn malformed_answers_are_decode_errors() {
        let cases = [
            (
                r#"{"data":[{"index":0,"embedding":[1.0]}]}"#,
                2,
                "1 vectors for 2 inputs",
            ),
            (r#"{"data":[]}"#, 1, "0 vectors for 1 inputs"),
            (
                r#"{"data":[{"index":0,"embedding":[1.0]},{"index":0,"embedding":[2.0]}]}"#,
                2,
                "index 0 appears twice",
            ),
            (
                r#"{"data":[{"index":5,"embedding":[1.0]}]}"#,
                1,
                "index 5 is out of range",
            ),
            (
                r#"{"data":[{"index":0,"embedding":"!!!!"}]}"#,
                1,
                "not base64",
            ),
            // Base64 of 3 bytes: not whole f32 values.
            (
                r#"{"data":[{"index":0,"embedding":"AAAA"}]}"#,
                1,
                "not base64",
            ),
            (r#"{"data":[{"index":0}]}"#, 1, "no `embedding`"),
        ];
        for (json, expected, says) in cases {
            let e = vectors("p", list(json), expected).unwrap_err();
            assert_eq!(e.kind, llm_core::ProviderErrorKind::Decode, "{json}");
            assert!(e.message.contains(says), "{json}: {}", e.message);
        }
    }

    #[test]
    fn an_error_payload_in_a_200_body_is_that_error() {
        let l = list(
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        );
        let e = vectors("p", l, 1).unwrap_err();
        assert_eq!(e.status, Some(500));
        assert_eq!(e.class(), ErrorClass::Retryable);
    }

    #[test]
    fn an_empty_batch_needs_no_vectors() {
        assert_eq!(vectors("p", list(r#"{"data":[]}"#), 0).unwrap().0.len(), 0);
    }
}
