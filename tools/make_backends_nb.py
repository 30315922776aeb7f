"""Writes book/backends.ipynb (source of the chapter; execute it afterwards)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
    md("""# Backends: numba, torch and the numpy reference

Every kernel of `nfdlib` exists twice as a product path (numba on the CPU; torch on a GPU
when there is one, else on the CPU) and once as a plain numpy **reference** that writes the
equations of the [notation page](notation.md) out layer by layer and serves as the oracle of
the tests. Weights are always drawn once, by a seeded NumPy `Generator`, and handed to the
backend, so two backends given the same seed compute the same network.

This chapter trains one small depth-µP network (Eq. 1 of {cite}`yao2025feature`, as reconstructed in the {ref}`reconstruction table <reconstruction-table>`) on the
digits data with cross-entropy, on a batch sequence fixed by the seed, with each backend in
float64 and float32, and compares the training losses and the final weights with the
reference. It also reports the time per SGD step. The timings depend on the machine and
are not checked; the agreement is."""),
    code("""profile = "book"     # "smoke" (seconds), "book" (default), "paper"
backend = "all"      # backends compared with the reference: "all", "numba", "torch"
device = "auto"      # torch device: "auto" (CUDA when present), "cpu", "cuda"
seed = 0
width = None         # None: the profile's default
depth = None
steps = None""", metadata={"tags": ["parameters"]}),
    code("""from nfdlib import experiments

settings = dict(profile=profile, backend=backend, device=device, seed=seed)
settings.update({k: v for k, v in dict(width=width, depth=depth, steps=steps).items() if v is not None})
exp = experiments.get("backends_agreement")
result = experiments.execute("backends_agreement", **settings)
params = exp.Params.build(**settings)
print(f"width {params.width}, depth {params.depth}, batch {params.batch}, {params.steps} SGD steps, eta_c = {params.eta_c}")"""),
    md("""The left panel shows the batch losses of every backend on top of each other; the right
panel shows how far each curve is from the reference. In float64 numba reproduces the
reference's losses exactly (its curve lies on the plot's floor, $10^{-18}$), and torch sits at
the level of rounding, $2$ to $4\\times10^{-16}$: the backends sum in different orders, nothing
more (the final weights agree to $10^{-14}$, table below). The float32 curves scatter between
about $10^{-10}$ and $2\\times10^{-8}$, under the single-precision unit roundoff
($6\\times10^{-8}$); over the 30 steps shown they grow by a factor of a few at most."""),
    code("""fig = exp.plot(result["data"], params)"""),
    md("""The largest relative errors, over all steps and all weights, and the verdict of the check
(float64 must agree to $10^{-9}$):"""),
    code("""# NBVAL_CHECK_OUTPUT
for row in result["data"]["rows"]:
    ok = row["weight_rel_err"] < (1e-9 if row["dtype"] == "float64" else 1e-4)
    print(f'{row["backend"]:6s} {row["dtype"]:8s} agrees with the reference: {ok}')
for claim in result["claims"]:
    print(claim["id"], claim["verdict"])"""),
    code("""for row in result["data"]["rows"]:
    print(f'{row["backend"]:6s} {row["dtype"]:8s} {row["ms_per_step"]:8.2f} ms/step   '
          f'loss err {row["loss_rel_err"]:.1e}   weight err {row["weight_rel_err"]:.1e}')"""),
    md("""## At the paper's scale

The same comparison at the paper profile's size (width 512, depth 64, 100 SGD steps), drawn
by the experiment's own `plot` from the compact result of its paper-profile run in
`book/_paper`, with the run's provenance and the verdict that the ledger records for it."""),
    code("""from nfdlib.paper_results import show

show("backends_agreement")"""),
    md("""The timings above come from a short run on whatever machine executed this page; the
speed comparison proper is `benchmarks/bench_network.py`, which measures milliseconds per
mini-batch step at widths 128 to 1024 (depth 64, batch 128) for the three backends and
relates them to the machine's single-precision matrix-multiply rate measured in the same
run. Re-run this chapter with other parameters:

```bash
papermill book/backends.ipynb /tmp/backends.ipynb -p width 256 -p depth 8
python -m nfdlib run backends_agreement --set width=256 --set depth=8
```"""),
]
nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["execution"] = {"timeout": 1200}
nbf.write(nb, "book/backends.ipynb")
