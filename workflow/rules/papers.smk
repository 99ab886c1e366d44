# papers: each table and figure a target by path and a report item with a caption (category = paper).


wildcard_constraints:
    paper=r"threeplayer|disgan",
    table=r"method_comparison|method_comparison_out_of_sample|ablation",


rule paper_table:
    input:
        table_inputs,
    output:
        csv=report(
            "results/tables/{paper}/{table}.csv",
            caption="../report/paper_table.rst",
            category="{paper}",
            subcategory="table",
            labels={"name": "{table}"},
        ),
        md="results/tables/{paper}/{table}.md",
    params:
        pairs=lambda wc, input: [f"{variant_label(v)}={p}" for v, p in zip(table_variants(wc), input)],
        reference=lambda wc: reference(wc.paper, table_variants(wc)) or "",
        option=lambda wc: f"--reference {reference(wc.paper, table_variants(wc))}"
        if reference(wc.paper, table_variants(wc))
        else "",
        dataset=table_dataset,
        variants=table_variants,
        n=lambda wc: len(subjects_in("test", table_dataset(wc))),
    benchmark:
        "results/benchmarks/papers/{paper}/{table}.tsv"
    log:
        "results/logs/papers/{paper}/{table}.log",
    conda:
        ENV
    shell:
        "mrisr table --metrics {params.pairs} {params.option} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule noise_table:
    input:
        [
            metrics_path(DATASET, noise_degradation(sigma), v)
            for sigma in NOISE_SIGMAS
            for v in NOISE_METHODS
        ],
    output:
        csv=report(
            "results/tables/disgan/noise.csv",
            caption="../report/noise_table.rst",
            category="disgan",
            subcategory="table",
            labels={"name": "noise"},
        ),
        md="results/tables/disgan/noise.md",
    params:
        pairs=lambda wc, input: [
            f"{variant_label(v)}@{sigma}={path}"
            for (sigma, v), path in zip([(s, v) for s in NOISE_SIGMAS for v in NOISE_METHODS], input)
        ],
        option=f"--reference {reference('disgan', NOISE_METHODS)}" if reference("disgan", NOISE_METHODS) else "",
        reference=reference("disgan", NOISE_METHODS) or "",
        variants=NOISE_METHODS,
        sigmas=NOISE_SIGMAS,
        n=len(subjects_in("test")),
    benchmark:
        "results/benchmarks/papers/disgan/noise_table.tsv"
    log:
        "results/logs/papers/disgan/noise_table.log",
    conda:
        ENV
    shell:
        "mrisr noise-table --metrics {params.pairs} {params.option} --out-csv {output.csv} --out-md {output.md}"
        " > {log} 2>&1"


rule noise_figure:
    input:
        "results/tables/disgan/noise.csv",
    output:
        png=report(
            "results/figures/disgan/noise.png",
            caption="../report/noise_figure.rst",
            category="disgan",
            subcategory="figure",
            labels={"name": "noise"},
        ),
        pdf="results/figures/disgan/noise.pdf",
    params:
        variants=NOISE_METHODS,
        sigmas=NOISE_SIGMAS,
        n=len(subjects_in("test")),
    benchmark:
        "results/benchmarks/papers/disgan/noise_figure.tsv"
    log:
        "results/logs/papers/disgan/noise_figure.log",
    conda:
        ENV
    shell:
        "mrisr figure-noise --table {input} --out {output.png} > {log} 2>&1"


rule sr_comparison_figure:
    input:
        unpack(sr_figure_inputs),
    output:
        png=report(
            "results/figures/{paper}/sr_comparison.png",
            caption="../report/sr_comparison.rst",
            category="{paper}",
            subcategory="figure",
            labels={"name": "sr_comparison"},
        ),
        pdf="results/figures/{paper}/sr_comparison.pdf",
    params:
        panels=sr_panels,
        zoom=config["figures"]["zoom"],
        scale=config["scale"],
        title=FIGURE_TITLE,
        subject=figure_subject(),
    benchmark:
        "results/benchmarks/papers/{paper}/sr_comparison_figure.tsv"
    log:
        "results/logs/papers/{paper}/sr_comparison_figure.log",
    conda:
        ENV
    shell:
        "mrisr figure-sr --panel {params.panels} --mask {input.mask} --scale {params.scale} --zoom {params.zoom}"
        " --title {params.title:q} --out {output.png} > {log} 2>&1"


rule zoom_profile_figure:
    input:
        unpack(sr_figure_inputs),
    output:
        png=report(
            "results/figures/{paper}/zoom_profile.png",
            caption="../report/zoom_profile.rst",
            category="{paper}",
            subcategory="figure",
            labels={"name": "zoom_profile"},
        ),
        pdf="results/figures/{paper}/zoom_profile.pdf",
    params:
        panels=sr_panels,
        zoom=config["figures"]["zoom"],
        length=config["figures"]["profile_length"],
        scale=config["scale"],
        title=FIGURE_TITLE,
        subject=figure_subject(),
    benchmark:
        "results/benchmarks/papers/{paper}/zoom_profile_figure.tsv"
    log:
        "results/logs/papers/{paper}/zoom_profile_figure.log",
    conda:
        ENV
    shell:
        "mrisr figure-profile --panel {params.panels} --mask {input.mask} --scale {params.scale} --zoom {params.zoom}"
        " --length {params.length} --title {params.title:q} --out {output.png} > {log} 2>&1"


rule discrepancy_figure:
    input:
        [f"results/models/{DATASET}/{v}/train_log.csv" for v in DISCREPANCY_VARIANTS],
    output:
        png=report(
            "results/figures/threeplayer/discrepancy.png",
            caption="../report/discrepancy.rst",
            category="threeplayer",
            subcategory="figure",
            labels={"name": "discrepancy"},
        ),
        pdf="results/figures/threeplayer/discrepancy.pdf",
    params:
        logs=lambda wc, input: [f"{variant_label(v)}={p}" for v, p in zip(DISCREPANCY_VARIANTS, input)],
        variants=DISCREPANCY_VARIANTS,
    benchmark:
        "results/benchmarks/papers/threeplayer/discrepancy_figure.tsv"
    log:
        "results/logs/papers/threeplayer/discrepancy_figure.log",
    conda:
        ENV
    shell:
        "mrisr figure-discrepancy --log {params.logs} --out {output.png} > {log} 2>&1"


rule stripes_figure:
    input:
        gt=hr_path(DATASET, figure_subject()),
        mask=hr_path(DATASET, figure_subject(), "mask"),
        blended=sr_path(DATASET, TRAIN_DEGRADATION, STRIPES_VARIANT, figure_subject()),
        pasted=f"results/sr_pasted/{DATASET}/{TRAIN_DEGRADATION}/{STRIPES_VARIANT}/sub-{figure_subject()}_T1w.nii.gz",
    output:
        png=report(
            "results/figures/disgan/stripes.png",
            caption="../report/stripes.rst",
            category="disgan",
            subcategory="figure",
            labels={"name": "stripes"},
        ),
        pdf="results/figures/disgan/stripes.pdf",
    params:
        period=config["papers"]["disgan"]["pasted_tile"] * config["scale"],
        variant=STRIPES_VARIANT,
        title=FIGURE_TITLE,
        subject=figure_subject(),
    benchmark:
        "results/benchmarks/papers/disgan/stripes_figure.tsv"
    log:
        "results/logs/papers/disgan/stripes_figure.log",
    conda:
        ENV
    shell:
        "mrisr figure-stripes --gt {input.gt} --blended {input.blended} --pasted {input.pasted} --mask {input.mask}"
        " --period {params.period} --label {params.variant} --title {params.title:q} --out {output.png} > {log} 2>&1"
