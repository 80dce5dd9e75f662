//! The request body template and its placeholders.
//!
//! A template is any JSON object (a TOML table in the configuration). A string
//! value that is exactly a placeholder such as `"{{prompt}}"` (spaces inside
//! the braces allowed) is replaced by the request's value, with its JSON type:
//! numbers stay numbers, `{{messages}}` becomes an array. A placeholder whose
//! value is absent (no system prompt, no `top_p`, no `max_tokens`, no stop
//! sequences, no `response_format`, …) removes its key, or its array element.
//! Every other value is sent as written.
//!
//! The embeddings body (`embed_template`) has its own placeholders:
//! `{{inputs}}` (the batch, an array of strings), `{{model}}` and
//! `{{dimensions}}`.

use llm_core::{EmbeddingRequest, LlmRequest, ResponseFormat, Role};
use serde_json::{Map, Number, Value};

/// A value a placeholder stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    /// `{{prompt}}`: the conversation without system messages, as text (a
    /// lone user message as it is, a longer conversation with role labels).
    Prompt,
    /// `{{model}}`: the model resolved for this instance.
    Model,
    /// `{{max_tokens}}`: a number.
    MaxTokens,
    /// `{{temperature}}`: a number.
    Temperature,
    /// `{{system_prompt}}`: the system prompt and system messages.
    SystemPrompt,
    /// `{{messages}}`: `[{"role": …, "content": …}]`, system prompt first.
    Messages,
    /// `{{top_p}}`: a number.
    TopP,
    /// `{{stop}}`: an array of strings.
    Stop,
    /// `{{seed}}`: a number.
    Seed,
    /// `{{frequency_penalty}}`: a number.
    FrequencyPenalty,
    /// `{{presence_penalty}}`: a number.
    PresencePenalty,
    /// `{{user}}`: the end-user identifier, a string.
    User,
    /// `{{response_format}}`: the OpenAI-shaped object
    /// (`{"type": "json_object"}`, `{"type": "json_schema", "json_schema": {…}}`).
    ResponseFormat,
    /// `{{json_schema}}`: the JSON Schema of a `json_schema` response format.
    JsonSchema,
    /// `{{inputs}}` (embeddings only): the texts to embed, an array of strings.
    Inputs,
    /// `{{dimensions}}` (embeddings only): the requested vector length, a number.
    Dimensions,
}

/// Placeholder names, as written between the braces.
pub(crate) const PLACEHOLDERS: &[(&str, Var)] = &[
    ("prompt", Var::Prompt),
    ("model", Var::Model),
    ("max_tokens", Var::MaxTokens),
    ("temperature", Var::Temperature),
    ("system_prompt", Var::SystemPrompt),
    ("messages", Var::Messages),
    ("top_p", Var::TopP),
    ("stop", Var::Stop),
    ("seed", Var::Seed),
    ("frequency_penalty", Var::FrequencyPenalty),
    ("presence_penalty", Var::PresencePenalty),
    ("user", Var::User),
    ("response_format", Var::ResponseFormat),
    ("json_schema", Var::JsonSchema),
];

/// Placeholder names of the embeddings body template.
pub(crate) const EMBED_PLACEHOLDERS: &[(&str, Var)] = &[
    ("inputs", Var::Inputs),
    ("model", Var::Model),
    ("dimensions", Var::Dimensions),
];

/// What placeholders are replaced with.
pub(crate) trait Values {
    /// The value of `var`; `None` removes its key (or array element).
    fn value(&self, var: Var) -> Option<Value>;
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Slot(Var),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// A compiled request template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    root: Vec<(String, Node)>,
}

/// The request values placeholders are replaced with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Vars<'a> {
    /// The request.
    pub req: &'a LlmRequest,
    /// The model resolved for this instance, if any.
    pub model: Option<&'a str>,
}

impl Values for Vars<'_> {
    fn value(&self, var: Var) -> Option<Value> {
        value_of(var, self)
    }
}

/// The embeddings request values placeholders are replaced with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EmbedVars<'a> {
    /// The request.
    pub req: &'a EmbeddingRequest,
    /// The embedding model.
    pub model: &'a str,
}

impl Values for EmbedVars<'_> {
    fn value(&self, var: Var) -> Option<Value> {
        match var {
            Var::Inputs => Some(Value::from(self.req.inputs.clone())),
            Var::Model => Some(Value::String(self.model.to_string())),
            Var::Dimensions => self.req.dimensions.map(Value::from),
            _ => None,
        }
    }
}

impl Template {
    /// The original design's body: `model`, `prompt`, `max_tokens`,
    /// `temperature`, `system_prompt`.
    pub(crate) fn default_shape() -> Self {
        let slot = |k: &str, v| (k.to_string(), Node::Slot(v));
        Self {
            root: vec![
                slot("model", Var::Model),
                slot("prompt", Var::Prompt),
                slot("max_tokens", Var::MaxTokens),
                slot("temperature", Var::Temperature),
                slot("system_prompt", Var::SystemPrompt),
            ],
        }
    }

    /// The default embeddings body:
    /// `{"model": "{{model}}", "input": "{{inputs}}", "dimensions": "{{dimensions}}"}`.
    pub(crate) fn default_embed_shape() -> Self {
        let slot = |k: &str, v| (k.to_string(), Node::Slot(v));
        Self {
            root: vec![
                slot("model", Var::Model),
                slot("input", Var::Inputs),
                slot("dimensions", Var::Dimensions),
            ],
        }
    }

    /// Compiles a configured request template; the error says where it is wrong.
    pub(crate) fn compile(value: &Value) -> Result<Self, String> {
        Self::compile_with(value, PLACEHOLDERS)
    }

    /// Compiles a configured embeddings template (`{{inputs}}` required).
    pub(crate) fn compile_embed(value: &Value) -> Result<Self, String> {
        let t = Self::compile_with(value, EMBED_PLACEHOLDERS)?;
        if !t.uses(Var::Inputs) {
            return Err("needs the `{{inputs}}` placeholder (the texts to embed)".into());
        }
        Ok(t)
    }

    fn compile_with(value: &Value, known: &[(&str, Var)]) -> Result<Self, String> {
        match value {
            Value::Object(map) => Ok(Self {
                root: compile_object(map, "", known)?,
            }),
            _ => Err("must be a table (a JSON object)".into()),
        }
    }

    /// The request body for `vars`.
    pub(crate) fn render(&self, vars: &dyn Values) -> Map<String, Value> {
        render_object(&self.root, vars)
    }

    /// Whether the template has a `var` placeholder anywhere.
    pub(crate) fn uses(&self, var: Var) -> bool {
        self.root.iter().any(|(_, node)| node_uses(node, var))
    }
}

fn node_uses(node: &Node, var: Var) -> bool {
    match node {
        Node::Literal(_) => false,
        Node::Slot(v) => *v == var,
        Node::Array(items) => items.iter().any(|n| node_uses(n, var)),
        Node::Object(fields) => fields.iter().any(|(_, n)| node_uses(n, var)),
    }
}

fn compile_object(
    map: &Map<String, Value>,
    at: &str,
    known: &[(&str, Var)],
) -> Result<Vec<(String, Node)>, String> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), compile_node(v, &format!("{at}/{k}"), known)?)))
        .collect()
}

fn compile_node(value: &Value, at: &str, known: &[(&str, Var)]) -> Result<Node, String> {
    Ok(match value {
        Value::String(s) => match placeholder(s) {
            Some(name) => Node::Slot(lookup(name, known).ok_or_else(|| {
                let names: Vec<_> = known.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown placeholder `{{{{{name}}}}}` at `{at}` (known: {})",
                    names.join(", ")
                )
            })?),
            None => {
                if let Some((name, _)) = known
                    .iter()
                    .find(|(n, _)| s.contains(&format!("{{{{{n}}}}}")))
                {
                    return Err(format!(
                        "`{{{{{name}}}}}` at `{at}` must be the whole string value \
                         (placeholders are not interpolated inside text)"
                    ));
                }
                Node::Literal(value.clone())
            }
        },
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_node(v, &format!("{at}/{i}"), known))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Node::Object(compile_object(map, at, known)?),
        other => Node::Literal(other.clone()),
    })
}

/// The name inside `{{ name }}` when `s` is exactly one placeholder.
fn placeholder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let simple = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    simple.then_some(inner)
}

fn lookup(name: &str, known: &[(&str, Var)]) -> Option<Var> {
    known.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn render_object(fields: &[(String, Node)], vars: &dyn Values) -> Map<String, Value> {
    let mut out = Map::with_capacity(fields.len());
    for (k, node) in fields {
        if let Some(v) = render_node(node, vars) {
            out.insert(k.clone(), v);
        }
    }
    out
}

fn render_node(node: &Node, vars: &dyn Values) -> Option<Value> {
    match node {
        Node::Literal(v) => Some(v.clone()),
        Node::Slot(var) => vars.value(*var),
        Node::Array(items) => Some(Value::Array(
            items.iter().filter_map(|n| render_node(n, vars)).collect(),
        )),
        Node::Object(fields) => Some(Value::Object(render_object(fields, vars))),
    }
}

fn value_of(var: Var, vars: &Vars<'_>) -> Option<Value> {
    let req = vars.req;
    match var {
        Var::Prompt => Some(Value::String(prompt(req))),
        Var::Model => vars.model.map(|m| Value::String(m.to_string())),
        Var::MaxTokens => req.max_tokens.map(Value::from),
        Var::Temperature => req.temperature.and_then(float),
        Var::SystemPrompt => system_text(req).map(Value::String),
        Var::Messages => Some(messages(req)),
        Var::TopP => req.top_p.and_then(float),
        Var::Stop => (!req.stop.is_empty()).then(|| Value::from(req.stop.clone())),
        Var::Seed => req.seed.map(Value::from),
        Var::FrequencyPenalty => req.frequency_penalty.and_then(float),
        Var::PresencePenalty => req.presence_penalty.and_then(float),
        Var::User => req.user.clone().map(Value::String),
        Var::ResponseFormat => req.response_format.as_ref().map(response_format),
        Var::JsonSchema => match &req.response_format {
            Some(ResponseFormat::JsonSchema { schema, .. }) => Some(schema.clone()),
            _ => None,
        },
        // Embeddings placeholders: not accepted in a request template.
        Var::Inputs | Var::Dimensions => None,
    }
}

/// `response_format` as OpenAI's Chat Completions API spells it.
fn response_format(format: &ResponseFormat) -> Value {
    let mut out = Map::with_capacity(2);
    let kind = match format {
        ResponseFormat::Text => "text",
        ResponseFormat::JsonObject => "json_object",
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        } => {
            let mut inner = Map::with_capacity(4);
            inner.insert("name".into(), Value::String(name.clone()));
            if let Some(d) = description {
                inner.insert("description".into(), Value::String(d.clone()));
            }
            inner.insert("schema".into(), schema.clone());
            if let Some(s) = strict {
                inner.insert("strict".into(), Value::Bool(*s));
            }
            out.insert("json_schema".into(), Value::Object(inner));
            "json_schema"
        }
    };
    out.insert("type".into(), Value::String(kind.into()));
    Value::Object(out)
}

/// The conversation without system messages, as one text: a lone user
/// message as it is; otherwise one paragraph per turn, labelled `User:`,
/// `Assistant:` or `Tool:`, separated by blank lines.
pub(crate) fn prompt(req: &LlmRequest) -> String {
    let turns: Vec<_> = req
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .collect();
    if let [only] = turns.as_slice() {
        if only.role == Role::User {
            return only.content.clone();
        }
    }
    let mut out = String::new();
    for m in turns {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(match m.role {
            Role::User => "User: ",
            Role::Assistant => "Assistant: ",
            Role::Tool => "Tool: ",
            Role::System => "System: ",
        });
        out.push_str(&m.content);
    }
    out
}

/// An `f32` as the JSON number it was written as (`0.7`, not `0.699999988…`).
fn float(x: f32) -> Option<Value> {
    let shortest: f64 = x.to_string().parse().ok()?;
    Number::from_f64(shortest).map(Value::Number)
}

/// The system prompt followed by the text of any system messages, joined by a
/// blank line; `None` when there is none.
pub(crate) fn system_text(req: &LlmRequest) -> Option<String> {
    let parts: Vec<&str> = req
        .system_prompt
        .iter()
        .map(String::as_str)
        .chain(
            req.messages
                .iter()
                .filter(|m| m.role == Role::System)
                .map(|m| m.content.as_str()),
        )
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

fn messages(req: &LlmRequest) -> Value {
    let entry = |role: &str, content: &str| {
        let mut m = Map::with_capacity(2);
        m.insert("role".into(), Value::String(role.into()));
        m.insert("content".into(), Value::String(content.into()));
        Value::Object(m)
    };
    let system = req
        .system_prompt
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| entry("system", s));
    let rest = req
        .messages
        .iter()
        .map(|m| entry(m.role.as_str(), &m.content));
    Value::Array(system.chain(rest).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::Message;
    use serde_json::json;

    fn render(template: &Value, req: &LlmRequest, model: Option<&str>) -> Value {
        let t = Template::compile(template).unwrap();
        Value::Object(t.render(&Vars { req, model }))
    }

    #[test]
    fn default_shape_is_the_original_body() {
        let req = LlmRequest::new("Write a poem")
            .system("Be brief")
            .max_tokens(100)
            .temperature(0.7);
        let body = Template::default_shape().render(&Vars {
            req: &req,
            model: Some("private-model"),
        });
        assert_eq!(
            Value::Object(body),
            json!({"model": "private-model", "prompt": "Write a poem", "max_tokens": 100,
                   "temperature": 0.7, "system_prompt": "Be brief"})
        );
    }

    #[test]
    fn numbers_stay_numbers_and_absent_values_drop_their_key() {
        let t = json!({"n": "{{max_tokens}}", "t": "{{ temperature }}", "p": "{{top_p}}",
                       "s": "{{stop}}", "sys": "{{system_prompt}}", "seed": "{{seed}}"});
        let req = LlmRequest::new("x").max_tokens(7).temperature(0.2);
        assert_eq!(render(&t, &req, None), json!({"n": 7, "t": 0.2}));
        let req = req.top_p(0.9).stop("END").seed(42);
        assert_eq!(
            render(&t, &req, None),
            json!({"n": 7, "t": 0.2, "p": 0.9, "s": ["END"], "seed": 42})
        );
    }

    #[test]
    fn nested_templates_and_literals() {
        let t = json!({
            "input": {"text": "{{prompt}}", "lang": "zh", "parts": ["{{prompt}}", "{{system_prompt}}", 3]},
            "parameters": {"max_new_tokens": "{{max_tokens}}", "do_sample": true, "note": "{not a slot}"},
            "model": "{{model}}"
        });
        let req = LlmRequest::new("你好").max_tokens(5);
        assert_eq!(
            render(&t, &req, Some("m1")),
            json!({
                "input": {"text": "你好", "lang": "zh", "parts": ["你好", 3]},
                "parameters": {"max_new_tokens": 5, "do_sample": true, "note": "{not a slot}"},
                "model": "m1"
            })
        );
    }

    #[test]
    fn messages_array_puts_the_system_prompt_first() {
        let req = LlmRequest::from_messages(vec![
            Message::user("Hi"),
            Message::assistant("Hello"),
            Message::user("续写"),
        ])
        .system("You are a novelist.");
        let body = render(&json!({"messages": "{{messages}}"}), &req, None);
        assert_eq!(
            body,
            json!({"messages": [
                {"role": "system", "content": "You are a novelist."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "续写"}
            ]})
        );
        let prompt = render(&json!({"p": "{{prompt}}"}), &req, None);
        assert_eq!(
            prompt,
            json!({"p": "User: Hi\n\nAssistant: Hello\n\nUser: 续写"})
        );
    }

    #[test]
    fn the_default_body_labels_the_turns_of_a_conversation() {
        let req = LlmRequest::from_messages(vec![
            Message::system("Rule"),
            Message::user("写一首诗"),
            Message::assistant("好"),
            Message::user("再来"),
        ]);
        let body = Template::default_shape().render(&Vars {
            req: &req,
            model: None,
        });
        assert_eq!(
            body["prompt"],
            json!("User: 写一首诗\n\nAssistant: 好\n\nUser: 再来")
        );
        assert_eq!(body["system_prompt"], json!("Rule"));
        // A lone user message is sent as it is.
        let req = LlmRequest::new("写一首诗").system("Rule");
        let body = Template::default_shape().render(&Vars {
            req: &req,
            model: None,
        });
        assert_eq!(body["prompt"], json!("写一首诗"));
        // A lone assistant turn is labelled.
        let req = LlmRequest::from_messages(vec![Message::assistant("Once")]);
        assert_eq!(prompt(&req), "Assistant: Once");
    }

    #[test]
    fn structured_output_penalties_and_user() {
        use llm_core::ResponseFormat;
        let t = json!({
            "response_format": "{{response_format}}",
            "options": {"format": "{{json_schema}}", "frequency_penalty": "{{frequency_penalty}}",
                        "presence_penalty": "{{presence_penalty}}", "user": "{{user}}"},
            "max_tokens": "{{max_tokens}}", "temperature": "{{temperature}}"
        });
        let mut req = LlmRequest::new("x");
        req.temperature = None;
        assert_eq!(render(&t, &req, None), json!({"options": {}}));

        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}},
                            "required": ["a"], "additionalProperties": false});
        let mut req = LlmRequest::new("x").response_format(ResponseFormat::JsonSchema {
            name: "thing".into(),
            schema: schema.clone(),
            strict: Some(true),
            description: None,
        });
        req.frequency_penalty = Some(0.5);
        req.presence_penalty = Some(-1.25);
        req.user = Some("user-42".into());
        assert_eq!(
            render(&t, &req, None),
            json!({
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "thing", "schema": schema, "strict": true}},
                "options": {"format": schema, "frequency_penalty": 0.5,
                            "presence_penalty": -1.25, "user": "user-42"},
                "temperature": 0.7
            })
        );

        let req = LlmRequest::new("x").response_format(ResponseFormat::JsonObject);
        let body = render(&t, &req, None);
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        assert_eq!(body["options"], json!({}));
        let req = LlmRequest::new("x").response_format(ResponseFormat::Text);
        assert_eq!(
            render(&t, &req, None)["response_format"],
            json!({"type": "text"})
        );
        let req = LlmRequest::new("x").response_format(ResponseFormat::JsonSchema {
            name: "n".into(),
            schema: json!({}),
            strict: None,
            description: Some("what".into()),
        });
        assert_eq!(
            render(&t, &req, None)["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "n", "description": "what", "schema": {}}})
        );
    }

    #[test]
    fn uses_finds_placeholders_at_any_depth() {
        let t =
            Template::compile(&json!({"a": [{"b": "{{json_schema}}"}], "c": "{{user}}"})).unwrap();
        assert!(t.uses(Var::JsonSchema) && t.uses(Var::User));
        assert!(!t.uses(Var::ResponseFormat) && !t.uses(Var::Prompt));
        let d = Template::default_shape();
        assert!(d.uses(Var::Prompt) && d.uses(Var::MaxTokens));
        assert!(!d.uses(Var::ResponseFormat) && !d.uses(Var::FrequencyPenalty));
    }

    #[test]
    fn system_messages_join_the_system_prompt() {
        let req = LlmRequest::from_messages(vec![Message::system("Rule 2"), Message::user("q")])
            .system("Rule 1");
        assert_eq!(system_text(&req).as_deref(), Some("Rule 1\n\nRule 2"));
        assert_eq!(system_text(&LlmRequest::new("q")), None);
    }

    #[test]
    fn bad_templates_are_rejected_with_their_location() {
        let e = Template::compile(&json!({"a": {"b": "{{promt}}"}})).unwrap_err();
        assert!(e.contains("`{{promt}}`") && e.contains("/a/b"), "{e}");
        let e = Template::compile(&json!({"a": "Q: {{prompt}}"})).unwrap_err();
        assert!(e.contains("whole string"), "{e}");
        let e = Template::compile(&json!(["{{prompt}}"])).unwrap_err();
        assert!(e.contains("table"), "{e}");
        // Embeddings placeholders belong to `embed_template` only.
        let e = Template::compile(&json!({"texts": "{{inputs}}"})).unwrap_err();
        assert!(e.contains("unknown placeholder `{{inputs}}`"), "{e}");
    }

    #[test]
    fn embed_templates_have_their_own_placeholders() {
        let req = EmbeddingRequest::new(["第一章", "b"]).model("e5");
        let vars = EmbedVars {
            req: &req,
            model: "e5",
        };
        let body = Value::Object(Template::default_embed_shape().render(&vars));
        assert_eq!(body, json!({"model": "e5", "input": ["第一章", "b"]}));
        let req = req.clone().dimensions(256);
        let vars = EmbedVars {
            req: &req,
            model: "e5",
        };
        let t = Template::compile_embed(&json!({
            "texts": "{{inputs}}", "options": {"dim": "{{dimensions}}", "normalize": true},
            "model_id": "{{model}}"
        }))
        .unwrap();
        assert_eq!(
            Value::Object(t.render(&vars)),
            json!({"texts": ["第一章", "b"], "options": {"dim": 256, "normalize": true},
                   "model_id": "e5"})
        );
        assert!(t.uses(Var::Dimensions));
        let e = Template::compile_embed(&json!({"model": "{{model}}"})).unwrap_err();
        assert!(e.contains("`{{inputs}}`"), "{e}");
        let e = Template::compile_embed(&json!({"input": "{{inputs}}", "p": "{{prompt}}"}))
            .unwrap_err();
        assert!(e.contains("unknown placeholder `{{prompt}}`"), "{e}");
        assert!(e.contains("known: inputs, model, dimensions"), "{e}");
    }
}
