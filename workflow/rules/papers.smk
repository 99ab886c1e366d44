# papers: every table and figure of the three papers, each a target by path under results/papers/<dataset>/<paper>/
# and a report item with a caption (category = paper).

from mrisr.papers.tables import start_note

PAPERS = config["papers"]
OUT_OF_SAMPLE = PAPERS["threeplayer"]["out_of_sample"]
# the named variants that this run trains, in the paper's order
in_run = lambda names: [n for n in names if n in RUN_VARIANTS]
reference = lambda paper, names: PAPERS[paper]["reference"] if PAPERS[paper]["reference"] in names else None
variant_label = lambda variant: config["variants"][variant].get("label", variant)
# what a learned variant's generator started from, for the tables and figures ("" for interpolation)
variant_start = lambda v: (
    ""
    if config["variants"][v]["kind"] != "gan"
    else (
        "scratch"
        if config["variants"][v]["start"] == "scratch"
        else f"the pixel-loss generator {variant_generator_key(v)} ({config['pretrain']['steps']} steps)"
    )
)
starts_of = lambda variants: start_note({variant_label(v): variant_start(v) for v in variants})
gan_variants = lambda names: [n for n in names if config["variants"][n]["kind"] == "gan"]
# the one form of labelled inputs: JSON records of label, path and any further columns (e.g. sigma)
labelled_inputs = lambda labels, paths, **columns: as_json(
    [
        {"label": label, "path": str(p), **{name: values[i] for name, values in columns.items()}}
        for i, (label, p) in enumerate(zip(labels, paths, strict=True))
    ]
)
paper_path = lambda paper, name: path("paper", dataset=DATASET, paper=paper, name=name)
# a table (csv + md) or figure (png + pdf); the first is the report item, with its caption
PAPER_FILES = {"table": ("csv", "md"), "figure": ("png", "pdf")}
paper_outputs = lambda paper, name, caption, kind: {
    PAPER_FILES[kind][0]: report(
        paper_path(paper, f"{name}.{PAPER_FILES[kind][0]}"),
        caption=f"../report/{caption}.rst",
        category=paper,
        subcategory=kind,
        labels={"name": name},
    ),
    PAPER_FILES[kind][1]: paper_path(paper, f"{name}.{PAPER_FILES[kind][1]}"),
}
paper_log = lambda paper, name: f"results/logs/papers/{DATASET}/{paper}/{name}.log"
paper_benchmark = lambda paper, name: f"results/benchmarks/papers/{DATASET}/{paper}/{name}.tsv"

#: Tables: paper -> name -> (dataset, variants).
TABLES = {
    paper: {
        "method_comparison": (DATASET, in_run(PAPERS[paper]["methods"])),
        "ablation": (DATASET, in_run(PAPERS[paper]["ablations"])),
    }
    for paper in ("threeplayer", "disgan")
}
if OUT_OF_SAMPLE:
    TABLES["threeplayer"]["method_comparison_out_of_sample"] = (OUT_OF_SAMPLE, in_run(PAPERS["threeplayer"]["methods"]))
table_dataset = lambda wildcards: TABLES[wildcards.paper][wildcards.table][0]
table_variants = lambda wildcards: TABLES[wildcards.paper][wildcards.table][1]
table_reference = lambda wildcards: reference(wildcards.paper, table_variants(wildcards)) or ""
get_papers_method_table_input = lambda wildcards: [
    path("metrics", dataset=table_dataset(wildcards), degradation=TRAIN_DEGRADATION, variant=v)
    for v in table_variants(wildcards)
]

NOISE_SIGMAS = PAPERS["disgan"]["noise_sigmas"]
NOISE_METHODS = in_run(PAPERS["disgan"]["methods"])
NOISE_REFERENCE = reference("disgan", NOISE_METHODS) or ""
NOISE_INPUTS = [(sigma, v) for sigma in NOISE_SIGMAS for v in NOISE_METHODS]
# the LR set of the noise experiment at sigma: the training degradation plus Gaussian noise
noise_degradation = lambda sigma: TRAIN_DEGRADATION if sigma == 0 else f"{TRAIN_DEGRADATION}-noise{sigma:g}"

FIGURE_SUBJECT = config["figures"]["subject"] or subjects_in("test")[0]
FIGURE_TITLE = f"sub-{FIGURE_SUBJECT}, {TRAIN_DEGRADATION} x{config['scale']}"
FIGURE_HR = {kind: path("hr", dataset=DATASET, subject=FIGURE_SUBJECT, kind=kind) for kind in ("T1w", "mask", "dseg")}
figure_sr = lambda variant: path(
    "sr", dataset=DATASET, degradation=TRAIN_DEGRADATION, variant=variant, subject=FIGURE_SUBJECT
)
DISCREPANCY_VARIANTS = gan_variants(in_run(PAPERS["threeplayer"]["ablations"]))
STRIPES_VARIANT = PAPERS["disgan"]["reference"]
get_sr_figure_input = lambda wildcards: {
    "lr": path("lr", dataset=DATASET, degradation=TRAIN_DEGRADATION, subject=FIGURE_SUBJECT),
    "sr": [figure_sr(v) for v in in_run(PAPERS[wildcards.paper]["methods"])],
    "gt": FIGURE_HR["T1w"],
    "mask": FIGURE_HR["mask"],
}
get_sr_panels = lambda wildcards, input: labelled_inputs(
    ["LR", *map(variant_label, in_run(PAPERS[wildcards.paper]["methods"])), "GT"], [input.lr, *input.sr, input.gt]
)
# the README's figure, on the demo: a raw test scan, decimated, through the 3-player paper's reference model (else the
# first learned one); other datasets' raw scans may be anisotropic, which a model applies to only after --resample
USAGE_VARIANT = (
    next(iter(gan_variants([PAPERS["threeplayer"]["reference"]] + RUN_VARIANTS)), None)
    if config["datasets"][DATASET]["source"] == "demo"
    else None
)
SEGMENTATION_SCORES = {
    arm: [path("segment", dataset=DATASET, arm=arm, seed=seed, file="scores.csv") for seed in SEGMENTATION["seeds"]]
    for arm in SEGMENTATION_ARMS
}

PAPER_TARGETS = (
    [
        paper_path(paper, f"{name}.{ext}")
        for paper, names in TABLES.items()
        for name, (_, variants) in names.items()
        if variants
        for ext in ("csv", "md")
    ]
    + [paper_path(p, "sr_comparison.png") for p in ("threeplayer", "disgan") if in_run(PAPERS[p]["methods"])]
    + [paper_path("threeplayer", "discrepancy.png")] * bool(DISCREPANCY_VARIANTS)
    + [paper_path("threeplayer", "zoom_profile.png")] * bool(in_run(PAPERS["threeplayer"]["methods"]))
    + [paper_path("disgan", name) for name in ("noise.csv", "noise.md", "noise.png")] * bool(NOISE_METHODS)
    + [paper_path("disgan", "stripes.png")] * bool(gan_variants(in_run([STRIPES_VARIANT])))
    + [paper_path("augment", name) for name in ("segmentation.csv", "segmentation.md", "segmentation.png")]
    * SEGMENTATION_RUNS
    + [paper_path("usage", "before_after.png")] * bool(USAGE_VARIANT)
)


wildcard_constraints:
    paper=r"threeplayer|disgan",
    table=r"method_comparison|method_comparison_out_of_sample|ablation",


rule papers_method_table:
    input:
        get_papers_method_table_input,
    output:
        **paper_outputs("{paper}", "{table}", "paper_table", "table"),
    log:
        paper_log("{paper}", "{table}"),
    benchmark:
        paper_benchmark("{paper}", "{table}")
    conda:
        ENV
    params:
        inputs=lambda wc, input: labelled_inputs(
            [variant_label(v) for v in table_variants(wc)], input, start=[variant_start(v) for v in table_variants(wc)]
        ),
        reference=table_reference,
        reference_option=lambda wc: (
            option("--reference", variant_label(table_reference(wc))) if table_reference(wc) else ""
        ),
        dataset=table_dataset,
        variants=table_variants,
        n=lambda wc: len(subjects_in("test", table_dataset(wc))),
    shell:
        "mrisr papers method-table --inputs {params.inputs:q} {params.reference_option}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule papers_noise_table:
    input:
        [path("metrics", dataset=DATASET, degradation=noise_degradation(s), variant=v) for s, v in NOISE_INPUTS],
    output:
        **paper_outputs("disgan", "noise", "noise_table", "table"),
    log:
        paper_log("disgan", "noise_table"),
    benchmark:
        paper_benchmark("disgan", "noise_table")
    conda:
        ENV
    params:
        inputs=lambda wc, input: labelled_inputs(
            [variant_label(v) for _, v in NOISE_INPUTS], input, sigma=[s for s, _ in NOISE_INPUTS]
        ),
        reference=NOISE_REFERENCE,
        reference_option=option("--reference", variant_label(NOISE_REFERENCE)) if NOISE_REFERENCE else "",
        variants=NOISE_METHODS,
        sigmas=NOISE_SIGMAS,
        n=len(subjects_in("test")),
    shell:
        "mrisr papers noise-table --inputs {params.inputs:q} {params.reference_option}"
        " --out-csv {output.csv:q} --out-md {output.md:q} > {log:q} 2>&1"


rule papers_noise_figure:
    input:
        paper_path("disgan", "noise.csv"),
    output:
        **paper_outputs("disgan", "noise", "noise_figure", "figure"),
    log:
        paper_log("disgan", "noise_figure"),
    benchmark:
        paper_benchmark("disgan", "noise_figure")
    conda:
        ENV
    params:
        variants=NOISE_METHODS,
        sigmas=NOISE_SIGMAS,
        n=len(subjects_in("test")),
    shell:
        "mrisr papers noise-figure --table {input:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_sr_comparison:
    input:
        unpack(get_sr_figure_input),
    output:
        **paper_outputs("{paper}", "sr_comparison", "sr_comparison", "figure"),
    log:
        paper_log("{paper}", "sr_comparison"),
    benchmark:
        paper_benchmark("{paper}", "sr_comparison")
    conda:
        ENV
    params:
        inputs=get_sr_panels,
        zoom=config["figures"]["zoom"],
        scale=config["scale"],
        title=lambda wc: f"{FIGURE_TITLE}\n{starts_of(in_run(PAPERS[wc.paper]['methods']))}",
        subject=FIGURE_SUBJECT,
    shell:
        "mrisr papers sr-comparison --inputs {params.inputs:q} --mask {input.mask:q} --scale {params.scale:q}"
        " --zoom {params.zoom:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_zoom_profile:
    input:
        unpack(get_sr_figure_input),
    output:
        **paper_outputs("{paper}", "zoom_profile", "zoom_profile", "figure"),
    log:
        paper_log("{paper}", "zoom_profile"),
    benchmark:
        paper_benchmark("{paper}", "zoom_profile")
    conda:
        ENV
    params:
        inputs=get_sr_panels,
        zoom=config["figures"]["zoom"],
        length=config["figures"]["profile_length"],
        scale=config["scale"],
        title=lambda wc: f"{FIGURE_TITLE}\n{starts_of(in_run(PAPERS[wc.paper]['methods']))}",
        subject=FIGURE_SUBJECT,
    shell:
        "mrisr papers zoom-profile --inputs {params.inputs:q} --mask {input.mask:q} --scale {params.scale:q}"
        " --zoom {params.zoom:q} --length {params.length:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_discrepancy:
    input:
        [path("train_log", dataset=DATASET, variant=v) for v in DISCREPANCY_VARIANTS],
    output:
        **paper_outputs("threeplayer", "discrepancy", "discrepancy", "figure"),
    log:
        paper_log("threeplayer", "discrepancy"),
    benchmark:
        paper_benchmark("threeplayer", "discrepancy")
    conda:
        ENV
    params:
        inputs=lambda wc, input: labelled_inputs([variant_label(v) for v in DISCREPANCY_VARIANTS], input),
        variants=DISCREPANCY_VARIANTS,
    shell:
        "mrisr papers discrepancy --inputs {params.inputs:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_stripes:
    input:
        gt=FIGURE_HR["T1w"],
        mask=FIGURE_HR["mask"],
        blended=figure_sr(STRIPES_VARIANT),
        pasted=path(
            "sr_pasted",
            dataset=DATASET,
            degradation=TRAIN_DEGRADATION,
            variant=STRIPES_VARIANT,
            subject=FIGURE_SUBJECT,
        ),
    output:
        **paper_outputs("disgan", "stripes", "stripes", "figure"),
    log:
        paper_log("disgan", "stripes"),
    benchmark:
        paper_benchmark("disgan", "stripes")
    conda:
        ENV
    params:
        period=PAPERS["disgan"]["pasted_tile"] * config["scale"],
        variant=STRIPES_VARIANT,
        title=FIGURE_TITLE,
        subject=FIGURE_SUBJECT,
    shell:
        "mrisr papers stripes --gt {input.gt:q} --blended {input.blended:q} --pasted {input.pasted:q} --mask {input.mask:q}"
        " --period {params.period:q} --label {params.variant:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


rule papers_segmentation_table:
    input:
        **SEGMENTATION_SCORES,
    output:
        **paper_outputs("augment", "segmentation", "segmentation_table", "table"),
    log:
        paper_log("augment", "segmentation_table"),
    benchmark:
        paper_benchmark("augment", "segmentation_table")
    conda:
        ENV
    params:
        inputs=lambda wc, input: labelled_inputs(
            [arm for arm in SEGMENTATION_ARMS for _ in input[arm]],
            [p for arm in SEGMENTATION_ARMS for p in input[arm]],
        ),
        n=len(subjects_in("test")),
        n_train=len(subjects_in("train")),
        sr_variant=SEGMENTATION["sr_variant"],
        degradation=SEGMENTATION_DEGRADATION,
    shell:
        "mrisr papers segmentation-table --inputs {params.inputs:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule papers_segmentation_figure:
    input:
        image=FIGURE_HR["T1w"],
        label=FIGURE_HR["dseg"],
        mask=FIGURE_HR["mask"],
        arms=[
            path(
                "segment",
                dataset=DATASET,
                arm=arm,
                seed=SEGMENTATION["seeds"][0],
                file=f"sub-{FIGURE_SUBJECT}_dseg.nii.gz",
            )
            for arm in SEGMENTATION_ARMS
        ],
    output:
        **paper_outputs("augment", "segmentation", "segmentation_figure", "figure"),
    log:
        paper_log("augment", "segmentation_figure"),
    benchmark:
        paper_benchmark("augment", "segmentation_figure")
    conda:
        ENV
    params:
        inputs=lambda wc, input: labelled_inputs(SEGMENTATION_ARMS, input.arms),
        classes=SEGMENTATION["classes"],
        seed=SEGMENTATION["seeds"][0],
        subject=FIGURE_SUBJECT,
        title=f"sub-{FIGURE_SUBJECT}, seed {SEGMENTATION['seeds'][0]}",
    shell:
        "mrisr papers segmentation-figure --image {input.image:q} --label {input.label:q} --mask {input.mask:q}"
        " --inputs {params.inputs:q} --classes {params.classes:q} --title {params.title:q} --out {output.png:q} > {log:q} 2>&1"


if USAGE_VARIANT:

    rule papers_before_after:
        """Not a paper's: the README's figure of a trained model applied to a scan it has never seen prepared."""
        input:
            lr=path("scan_lr", dataset=DATASET, subject=FIGURE_SUBJECT),
            sr=path("scan_sr", dataset=DATASET, subject=FIGURE_SUBJECT, variant=USAGE_VARIANT),
            hr=raw_files(DATASET)[FIGURE_SUBJECT]["T1w"],
        output:
            **paper_outputs("usage", "before_after", "before_after", "figure"),
        log:
            paper_log("usage", "before_after"),
        benchmark:
            paper_benchmark("usage", "before_after")
        conda:
            ENV
        params:
            title=(
                f"sub-{FIGURE_SUBJECT}'s raw scan (not prepared), {TRAIN_DEGRADATION} x{config['scale']}, "
                f"through the {variant_label(USAGE_VARIANT)} model card"
            ),
            subject=FIGURE_SUBJECT,
            variant=USAGE_VARIANT,
        shell:
            "mrisr papers before-after --lr {input.lr:q} --sr {input.sr:q} --hr {input.hr:q} --title {params.title:q}"
            " --out {output.png:q} > {log:q} 2>&1"
