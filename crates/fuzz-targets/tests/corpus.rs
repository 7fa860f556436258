//! Every fuzz target over its committed corpus (`fuzz/corpus/<target>/`), then over mutations
//! of it for a few seconds: what CI runs of the fuzzing (the coverage-guided runs are
//! `scripts/fuzz.sh`). A panic names the target and the input, in hex.
//!
//! `cargo test -p swarm-fuzz-targets --test corpus -- --ignored write_seeds` adds the targets'
//! seeds to the corpus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};
use swarm_fuzz_targets::{seeds::seeds, Target, TARGETS};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Panics anywhere in the process, counted: a target's handler may panic in a task it
/// spawned (the Raft core does), where no `catch_unwind` around the call sees it.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn run_one(t: &Target, input: &[u8]) {
    let before = PANICS.load(Ordering::SeqCst);
    run_caught(t, input);
    let after = PANICS.load(Ordering::SeqCst);
    assert_eq!(
        before,
        after,
        "target {} panicked in another task on input {} (or on one just before it)",
        t.name,
        hex(input)
    );
}

fn run_caught(t: &Target, input: &[u8]) {
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| (t.run)(input))) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("target {} panicked ({msg}) on input {}", t.name, hex(input));
    }
}

/// xorshift64*: the mutations are the same on every run of the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut v = pool[rng.below(pool.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => v.truncate(at),
            4 => {
                // Splice in a piece of another input.
                let other = &pool[rng.below(pool.len())];
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                v.splice(at..at, other[from..to].iter().copied());
            }
            _ => {
                // Interesting bytes: length prefixes and bounds.
                let b = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)];
                v.insert(at, b);
            }
        }
    }
    v
}

#[test]
fn every_target_over_its_corpus_and_mutations() {
    count_panics();
    let budget = Duration::from_millis(
        std::env::var("FUZZ_REPLAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    for t in TARGETS {
        let mut pool = corpus(t.name);
        assert!(
            !pool.is_empty(),
            "{}: empty corpus",
            corpus_dir(t.name).display()
        );
        for input in &pool {
            run_one(t, input);
        }
        pool.extend(seeds(t.name));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ t.name.len() as u64);
        let start = Instant::now();
        let mut runs = 0u64;
        while start.elapsed() < budget {
            let input = mutate(&mut rng, &pool);
            run_one(t, &input);
            runs += 1;
        }
        // Tasks the last inputs woke may still be running: give them time to fail.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "target {} panicked in a task",
            t.name
        );
        println!("{}: {} corpus inputs, {runs} mutations", t.name, pool.len());
    }
}

#[test]
#[ignore = "writes the seeds into fuzz/corpus: run on purpose, then commit the files"]
fn write_seeds() {
    for t in TARGETS {
        let dir = corpus_dir(t.name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds(t.name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
}
