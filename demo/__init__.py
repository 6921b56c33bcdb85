"""Demo-only code: what `make demo` sets up so that a first visit shows a platform at work. The platform never
imports it; only the `demo_setup` command does."""
