//! Pull progress on stderr: an indicatif bar (bytes, rate, ETA) on a
//! terminal, plain lines otherwise.

use std::io::IsTerminal;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use llm_router::ollama::PullProgress;

/// Shows the progress of one model download.
pub(crate) struct PullDisplay {
    model: String,
    bar: Option<ProgressBar>,
    status: String,
    digest: Option<String>,
    /// Last tenth of a layer reported as a plain line.
    tenth: Option<u64>,
}

impl PullDisplay {
    /// A display for `model`, with a bar when stderr is a terminal.
    pub(crate) fn new(model: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("{model}: starting"));
            bar
        });
        Self {
            model: model.to_string(),
            bar,
            status: String::new(),
            digest: None,
            tenth: None,
        }
    }

    /// Reports one progress line.
    pub(crate) fn update(&mut self, p: &PullProgress) {
        let new_layer = p.digest.is_some() && p.digest != self.digest;
        if new_layer {
            self.digest.clone_from(&p.digest);
            self.tenth = None;
        }
        let status_changed = p.status != self.status;
        if status_changed {
            self.status.clone_from(&p.status);
        }
        match &self.bar {
            Some(bar) => {
                if new_layer {
                    bar.reset();
                }
                if status_changed {
                    bar.set_message(format!("{}: {}", self.model, p.status));
                }
                if let Some(total) = p.total {
                    bar.set_length(total);
                    bar.set_position(p.completed.unwrap_or(0));
                }
            }
            None => self.plain(p, status_changed),
        }
    }

    fn plain(&mut self, p: &PullProgress, status_changed: bool) {
        match (p.total, p.fraction()) {
            (Some(total), Some(f)) => {
                let tenth = (f * 10.0).floor() as u64;
                if status_changed || self.tenth != Some(tenth) {
                    self.tenth = Some(tenth);
                    eprintln!(
                        "{}: {} {:>3}% ({} / {})",
                        self.model,
                        p.status,
                        tenth * 10,
                        HumanBytes(p.completed.unwrap_or(0)),
                        HumanBytes(total)
                    );
                }
            }
            _ if status_changed => eprintln!("{}: {}", self.model, p.status),
            _ => {}
        }
    }

    /// Ends the display.
    pub(crate) fn finish(&self, ok: bool) {
        if let Some(bar) = &self.bar {
            if ok {
                bar.finish_with_message(format!("{}: done", self.model));
            } else {
                bar.abandon_with_message(format!("{}: failed", self.model));
            }
        }
    }
}

/// Progress of several downloads in turn (`ensure_models`).
#[derive(Default)]
pub(crate) struct MultiPull {
    current: Option<PullDisplay>,
}

impl MultiPull {
    /// Reports a line of `model`'s download.
    pub(crate) fn update(&mut self, model: &str, p: &PullProgress) {
        if self.current.as_ref().is_none_or(|d| d.model != model) {
            if let Some(prev) = self.current.take() {
                prev.finish(true);
            }
            self.current = Some(PullDisplay::new(model));
        }
        if let Some(d) = self.current.as_mut() {
            d.update(p);
        }
    }

    /// Ends the display.
    pub(crate) fn finish(&mut self, ok: bool) {
        if let Some(d) = self.current.take() {
            d.finish(ok);
        }
    }
}
