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

/// A non-streaming answer to a request with `"logprobs": true, "top_logprobs": 2`:
/// [`COMPLETION`] with `choices[0].logprobs` filled in. The shape of
/// `logprobs` (`{"content":[{"token","logprob","bytes","top_logprobs":[{"token","logprob","bytes"}]}],"refusal":null}`)
/// is that of OpenAI's API reference (Chat Completions, "The chat completion
/// object", `choices[].logprobs`; schema `ChatCompletionTokenLogprob` in
/// OpenAI's `openapi.yaml`, github.com/openai/openai-openapi, and the
/// reference's "Logprobs" example of `POST /chat/completions`); the ids and
/// log probabilities here are illustrative.
pub const LOGPROBS_COMPLETION: &str = r#"{
  "id": "chatcmpl-C9xQ6mX4dQp8Ze0rTu3Vh5Lm7Ny9Sg",
  "object": "chat.completion",
  "created": 1756300004,
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
      "logprobs": {
        "content": [
          {
            "token": "Hello",
            "logprob": -0.0017029834,
            "bytes": [
              72,
              101,
              108,
              108,
              111
            ],
            "top_logprobs": [
              {
                "token": "Hello",
                "logprob": -0.0017029834,
                "bytes": [
                  72,
                  101,
                  108,
                  108,
                  111
                ]
              },
              {
                "token": "Hi",
                "logprob": -6.376703,
                "bytes": [
                  72,
                  105
                ]
              }
            ]
          },
          {
            "token": "!",
            "logprob": -0.00012143587,
            "bytes": [
              33
            ],
            "top_logprobs": [
              {
                "token": "!",
                "logprob": -0.00012143587,
                "bytes": [
                  33
                ]
              },
              {
                "token": ".",
                "logprob": -9.500121,
                "bytes": [
                  46
                ]
              }
            ]
          }
        ],
        "refusal": null
      },
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

/// The streamed answer to the same request: every content chunk carries the
/// log probabilities of its own tokens in `choices[0].logprobs.content`; the
/// finish chunk has `"logprobs": null` (OpenAI's API reference, "The chat
/// completion chunk object", `choices[].logprobs`, required keys `content`
/// and `refusal`). The per-chunk layout (`{"content":[],"refusal":null}` on
/// the role chunk, one token per content chunk) is that of captured
/// `gpt-4o` streams with `logprobs`; `null` on the finish chunk is assumed.
/// Ids and values are illustrative.
pub const LOGPROBS_STREAM: &[&str] = &[
    "data: {\"id\":\"chatcmpl-C9xQ7nY5eRq9Af1sUv4Wi6Mn8Oz0Th\",\"object\":\"chat.completion.chunk\",\"created\":1756300005,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":{\"content\":[],\"refusal\":null},\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Xb2\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ7nY5eRq9Af1sUv4Wi6Mn8Oz0Th\",\"object\":\"chat.completion.chunk\",\"created\":1756300005,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":{\"content\":[{\"token\":\"Hello\",\"logprob\":-0.0017029834,\"bytes\":[72,101,108,108,111],\"top_logprobs\":[{\"token\":\"Hello\",\"logprob\":-0.0017029834,\"bytes\":[72,101,108,108,111]},{\"token\":\"Hi\",\"logprob\":-6.376703,\"bytes\":[72,105]}]}],\"refusal\":null},\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"q\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ7nY5eRq9Af1sUv4Wi6Mn8Oz0Th\",\"object\":\"chat.completion.chunk\",\"created\":1756300005,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},\"logprobs\":{\"content\":[{\"token\":\"!\",\"logprob\":-0.00012143587,\"bytes\":[33],\"top_logprobs\":[{\"token\":\"!\",\"logprob\":-0.00012143587,\"bytes\":[33]},{\"token\":\".\",\"logprob\":-9.500121,\"bytes\":[46]}]}],\"refusal\":null},\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Tz81k\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ7nY5eRq9Af1sUv4Wi6Mn8Oz0Th\",\"object\":\"chat.completion.chunk\",\"created\":1756300005,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null,\"obfuscation\":\"mW\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ7nY5eRq9Af1sUv4Wi6Mn8Oz0Th\",\"object\":\"chat.completion.chunk\",\"created\":1756300005,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2,\"total_tokens\":22,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},\"obfuscation\":\"c4\"}\n\n",
    "data: [DONE]\n\n",
];

/// A non-streaming answer whose prompt was mostly read from OpenAI's prompt
/// cache: `usage.prompt_tokens_details.cached_tokens` counts the cached part
/// of `prompt_tokens` (OpenAI's API reference, `CompletionUsage`; the prompt
/// caching guide: caching starts at 1024 tokens and grows in 128-token
/// steps, hence 1792). [`COMPLETION`]'s layout; ids and counts illustrative.
pub const CACHED_COMPLETION: &str = r#"{
  "id": "chatcmpl-C9xQ8pZ6fSr0Bg2tVw5Xj7No9Pa1Ui",
  "object": "chat.completion",
  "created": 1756300006,
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
    "prompt_tokens": 1850,
    "completion_tokens": 2,
    "total_tokens": 1852,
    "prompt_tokens_details": {
      "cached_tokens": 1792,
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

/// The streamed form of [`CACHED_COMPLETION`]: the usage chunk carries
/// `prompt_tokens_details.cached_tokens`.
pub const CACHED_STREAM: &[&str] = &[
    "data: {\"id\":\"chatcmpl-C9xQ9qA7gTs1Ch3uWx6Yk8Op0Qb2Vj\",\"object\":\"chat.completion.chunk\",\"created\":1756300007,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Vd0\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ9qA7gTs1Ch3uWx6Yk8Op0Qb2Vj\",\"object\":\"chat.completion.chunk\",\"created\":1756300007,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello!\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"kP3r\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ9qA7gTs1Ch3uWx6Yk8Op0Qb2Vj\",\"object\":\"chat.completion.chunk\",\"created\":1756300007,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null,\"obfuscation\":\"Qa\"}\n\n",
    "data: {\"id\":\"chatcmpl-C9xQ9qA7gTs1Ch3uWx6Yk8Op0Qb2Vj\",\"object\":\"chat.completion.chunk\",\"created\":1756300007,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[],\"usage\":{\"prompt_tokens\":1850,\"completion_tokens\":2,\"total_tokens\":1852,\"prompt_tokens_details\":{\"cached_tokens\":1792,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},\"obfuscation\":\"n7\"}\n\n",
    "data: [DONE]\n\n",
];

/// `POST /v1/embeddings` answer with `"encoding_format": "base64"` to
/// `{"model":"text-embedding-3-small","input":["第一章","Chapter two"],"encoding_format":"base64","dimensions":4}`.
///
/// Shape from OpenAI's API reference, "Create embeddings"
/// (<https://platform.openai.com/docs/api-reference/embeddings/create>;
/// OpenAPI spec `openai/openai-openapi`, `openapi.yaml`: operation
/// `createEmbedding`, schemas `CreateEmbeddingResponse` and `Embedding`):
/// `object`, `data` (`object`, `index`, `embedding`), `model`, `usage`
/// (`prompt_tokens`, `total_tokens`), pretty-printed with 2-space
/// indentation as the API sends it. With `base64`, each `embedding` is the
/// base64 of the vector's little-endian `f32` bytes. The values are
/// [`EMBEDDING_VECTORS`]; the token counts are illustrative.
pub const EMBEDDINGS: &str = r#"{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "index": 0,
      "embedding": "ZicXO4DRGLxwaYE8OAU9uw=="
    },
    {
      "object": "embedding",
      "index": 1,
      "embedding": "DKNFvBazxDx1I4Y7v3z/PA=="
    }
  ],
  "model": "text-embedding-3-small",
  "usage": {
    "prompt_tokens": 7,
    "total_tokens": 7
  }
}"#;

/// The same answer with `"encoding_format": "float"` (the API's default):
/// each `embedding` a JSON array of numbers (the reference's example:
/// `"embedding": [0.0023064255, -0.009327292, …]`).
pub const EMBEDDINGS_FLOAT: &str = r#"{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "index": 0,
      "embedding": [
        0.0023064255,
        -0.009327292,
        0.015797347,
        -0.0028842222
      ]
    },
    {
      "object": "embedding",
      "index": 1,
      "embedding": [
        -0.012062799,
        0.024011176,
        0.0040935823,
        0.031187413
      ]
    }
  ],
  "model": "text-embedding-3-small",
  "usage": {
    "prompt_tokens": 7,
    "total_tokens": 7
  }
}"#;

/// The vectors of [`EMBEDDINGS`] and [`EMBEDDINGS_FLOAT`], in input order.
pub const EMBEDDING_VECTORS: [[f32; 4]; 2] = [
    [0.0023064255, -0.009327292, 0.015797347, -0.0028842222],
    [-0.012062799, 0.024011176, 0.0040935823, 0.031187413],
];
