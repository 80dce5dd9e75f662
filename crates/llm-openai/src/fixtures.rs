//! Exact bytes of the OpenAI Chat Completions API (protocols reference §2),
//! for tests and benchmarks of code built on this crate: mock upstreams answer
//! with them. Enabled by the `fixtures` feature.

/// §2.6, non-streaming response body (pretty-printed, as the API sends it).
pub const COMPLETION: &str = r#"{
  "id": "chatcmpl-C9xQ2d7LkzP4mWm1nHqYt0bR8sVjE",
  "object": "chat.completion",
  "created": 1756300000,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello!",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 20,
    "completion_tokens": 2,
    "total_tokens": 22,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_560af6e559"
}"#;

/// §2.6, streamed response: one event per element, each ending in a blank line.
pub const STREAM: &[&str] = &[
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Qm3xT\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"p8Kd\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Zr0wYb2Hk\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null,\"obfuscation\":\"V1\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ3fT0aZk8Wb2nLq5Ve7Yh1Rm4Pd6Gs\",\"object\":\"chat.completion.chunk\",\"created\":1756300001,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2,\"total_tokens\":22,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},\"obfuscation\":\"a7Tq\"}\n\n",
    "data: [DONE]\n\n",
];

/// §2.4.
pub const MODELS: &str = r#"{
  "object": "list",
  "data": [
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system", "shutdown_date": null}
  ]
}"#;

/// §2.5 bodies, pretty-printed with 2-space indentation as the API sends them.
pub const UNAUTHORIZED: &str = r#"{
  "error": {
    "message": "Incorrect API key provided: sk-VKMIs***************************************wjh3. You can find your API key at https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error",
    "param": null,
    "code": "invalid_api_key"
  }
}"#;

/// A non-streaming answer that calls a tool, pretty-printed like
/// [`COMPLETION`]. protocols.md gives no complete one: this is §2.6's body
/// with §2.1.1's tool call (`call_abc123`, `get_weather`) as the message's
/// `tool_calls`, `"content": null`, `"finish_reason": "tool_calls"` (§2.2);
/// ids and token counts are illustrative.
pub const TOOL_CALL_COMPLETION: &str = r#"{
  "id": "chatcmpl-C9xQ4hV2bNm6Xc8pRs1Tf3Jk5Lw7Qe",
  "object": "chat.completion",
  "created": 1756300002,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": null,
        "tool_calls": [
          {
            "id": "call_abc123",
            "type": "function",
            "function": {
              "name": "get_weather",
              "arguments": "{\"city\":\"Paris\"}"
            }
          }
        ],
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "tool_calls"
    }
  ],
  "usage": {
    "prompt_tokens": 58,
    "completion_tokens": 15,
    "total_tokens": 73,
    "prompt_tokens_details": {
      "cached_tokens": 0,
      "audio_tokens": 0
    },
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_560af6e559"
}"#;

/// §2.3, a streamed tool call: the four chunks shown there, whose abridged
/// start (`{…,`) is completed with §2.6's chunk fields (`id`, `object`,
/// `created`, `model`, `service_tier`, `system_fingerprint`; the id is
/// illustrative), then `data: [DONE]`. As shown in §2.3 the chunks carry no
/// `usage` key (a request without `stream_options.include_usage`).
pub const TOOL_CALL_STREAM: &[&str] = &[
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_abc123\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ5kW3cPo7Yd9qSt2Ug4Kl6Mx8Rf\",\"object\":\"chat.completion.chunk\",\"created\":1756300003,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: [DONE]\n\n",
];
