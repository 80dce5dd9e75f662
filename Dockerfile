# syntax=docker/dockerfile:1
#
# The `llm` binary (CLI and OpenAI-compatible gateway) in a small runtime image.
#
#   docker build -t llm-router/gateway .
#   docker run -p 8000:8000 -e LLM_GATEWAY_KEY=change-me -e OPENAI_API_KEY=sk-... llm-router/gateway
#
# docker-compose.yml runs it with Ollama, Redis and Prometheus.

# --- build ---------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# `redis`: the Redis response cache of config/docker.toml.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p llm-cli --features redis \
    && install -m 0755 target/release/llm /usr/local/bin/llm

# --- runtime -------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --no-create-home --shell /usr/sbin/nologin llm
COPY --from=builder /usr/local/bin/llm /usr/local/bin/llm
COPY config/docker.toml /etc/llm/config.toml
ENV LLM_CONFIG=/etc/llm/config.toml
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["llm"]
CMD ["serve", "--addr", "0.0.0.0:8000", "--config", "/etc/llm/config.toml"]
