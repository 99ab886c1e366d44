# papers: each table and figure a target by path and a report item with a caption.


rule method_comparison_table:
    input:
        metrics=expand(
            "results/metrics/{dataset}/{degradation}/{variant}.csv",
            dataset=DATASET,
            degradation=TRAIN_DEGRADATION,
            variant=RUN_VARIANTS,
        ),
    output:
        csv=report(
            "results/tables/threeplayer/method_comparison.csv",
            caption="../report/method_comparison.rst",
            category="3-player GAN",
            subcategory="table",
        ),
        md="results/tables/threeplayer/method_comparison.md",
    params:
        pairs=lambda wc, input: [
            f"{variant_label(v)}={path}" for v, path in zip(RUN_VARIANTS, input.metrics)
        ],
    benchmark:
        "results/benchmarks/papers/method_comparison_table.tsv",
    log:
        "results/logs/papers/method_comparison_table.log",
    conda:
        ENV
    shell:
        "mrisr table --metrics {params.pairs} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule sr_comparison_figure:
    input:
        lr=f"results/lr/{DATASET}/{TRAIN_DEGRADATION}/sub-{figure_subject()}_T1w.nii.gz",
        sr=[sr_path(DATASET, TRAIN_DEGRADATION, v, figure_subject()) for v in RUN_VARIANTS],
        gt=hr_path(DATASET, figure_subject()),
        mask=hr_path(DATASET, figure_subject(), "mask"),
    output:
        png=report(
            "results/figures/threeplayer/sr_comparison.png",
            caption="../report/sr_comparison.rst",
            category="3-player GAN",
            subcategory="figure",
        ),
        pdf="results/figures/threeplayer/sr_comparison.pdf",
    params:
        panels=lambda wc, input: [f"LR={input.lr}"]
        + [f"{variant_label(v)}={p}" for v, p in zip(RUN_VARIANTS, input.sr)]
        + [f"GT={input.gt}"],
        zoom=config["figures"]["zoom"],
        scale=config["scale"],
        title=f"sub-{figure_subject()}, {TRAIN_DEGRADATION} x{config['scale']}",
    benchmark:
        "results/benchmarks/papers/sr_comparison_figure.tsv",
    log:
        "results/logs/papers/sr_comparison_figure.log",
    conda:
        ENV
    shell:
        "mrisr figure-sr --panel {params.panels} --mask {input.mask} --scale {params.scale} --zoom {params.zoom}"
        " --title {params.title:q} --out {output.png} > {log} 2>&1"
