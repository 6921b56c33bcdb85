"""Demo-only code: synthetic data in the real file formats (`demo.synthetic`), the demo sets written and ingested
in parallel (`demo.data`), the simulated crowd (`demo.crowd`), and the commands that use them (`demo_data`,
`demo_setup`). The platform's runtime apps never import it; tests and benchmarks use its generators."""
