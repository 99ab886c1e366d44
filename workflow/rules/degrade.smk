# degrade: simulated LR volumes, one folder per named degradation (<name>-noise<sigma>: plus Gaussian noise); and a
# raw (unprepared) scan made into a user's LR scan, for the README's before/after figure.


# One rule per subject set (a split of a dataset), each job the set's volumes of one LR set.
for subject_set in PLAN.study.subject_sets:

    rule:
        name:
            f"degrade_{subject_set.name}"
        input:
            PLAN.degrade.set_input(subject_set),
        output:
            PLAN.degrade.outputs(subject_set),
        log:
            f"results/logs/degrade/{subject_set.dataset}/{{degradation}}/{subject_set.split}.log",
        benchmark:
            f"results/benchmarks/degrade/{subject_set.dataset}/{{degradation}}/{subject_set.split}.tsv"
        conda:
            ENV
        params:
            options=PLAN.degrade.options,
        shell:
            "mrisr degrade {params.options} > {log:q} 2>&1"


rule degrade_scan:
    """A raw scan, in scanner units and not prepared, decimated as training's LR: what a user brings."""
    input:
        PLAN.degrade.scan_input,
    output:
        path("scan_lr"),
    log:
        "results/logs/degrade/{dataset}/scan/sub-{subject}.log",
    benchmark:
        "results/benchmarks/degrade/{dataset}/scan/sub-{subject}.tsv"
    conda:
        ENV
    params:
        options=PLAN.degrade.scan_options,
    shell:
        "mrisr degrade {params.options} > {log:q} 2>&1"
