//! Spans carry the OpenTelemetry GenAI attributes, and never the prompt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{LlmClient, LlmRequest};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

type Spans = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

struct Capture(Spans);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").trim_matches('"').to_string(),
        );
    }
}

impl<S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>> Layer<S>
    for Capture
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        fields.insert("#id".into(), id.into_u64().to_string());
        self.0
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_string(), fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, fields)) = spans
            .iter_mut()
            .find(|(_, f)| f.get("#id") == Some(&id.into_u64().to_string()))
        {
            values.record(&mut Fields(fields));
        }
    }
}

#[tokio::test]
async fn client_and_attempt_spans_carry_gen_ai_attributes() {
    let spans: Spans = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Capture(spans.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let p = Arc::new(
        ScriptedProvider::new("ollama")
            .kind("ollama")
            .local(true)
            .models(["llama3:8b"])
            .otherwise(Reply::text("answer")),
    );
    let client = LlmClient::builder().provider(p).no_cache().build().unwrap();
    let secret_prompt = "my very private prompt text";
    client
        .generate(
            LlmRequest::new(secret_prompt)
                .max_tokens(100)
                .temperature(0.5),
        )
        .await
        .unwrap();

    let spans = spans.lock().unwrap();
    let (_, call) = spans
        .iter()
        .find(|(n, _)| n == "llm.client")
        .expect("client span");
    assert_eq!(call["gen_ai.operation.name"], "chat");
    assert_eq!(call["gen_ai.request.max_tokens"], "100");
    assert_eq!(call["gen_ai.request.temperature"], "0.5");
    assert_eq!(call["gen_ai.system"], "ollama");
    assert_eq!(call["gen_ai.response.model"], "llama3:8b");
    assert_eq!(
        call["gen_ai.usage.input_tokens"],
        secret_prompt.chars().count().to_string()
    );
    assert_eq!(call["gen_ai.usage.output_tokens"], "6");
    assert_eq!(call["gen_ai.response.finish_reasons"], "stop");
    assert_eq!(call["llm.provider"], "ollama");
    assert_eq!(call["llm.cache"], "off");
    let (_, attempt) = spans
        .iter()
        .find(|(n, _)| n == "llm.attempt")
        .expect("attempt span");
    assert_eq!(attempt["llm.attempt"], "1");
    assert_eq!(attempt["llm.provider"], "ollama");
    assert_eq!(attempt["gen_ai.system"], "ollama");
    assert_eq!(attempt["gen_ai.request.model"], "llama3:8b");
    for (_, fields) in spans.iter() {
        assert!(
            fields.values().all(|v| !v.contains(secret_prompt)),
            "prompt recorded: {fields:?}"
        );
    }
}
