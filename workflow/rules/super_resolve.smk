# super-resolve: whole LR volumes onto the HR reference grid (interpolation or a trained generator); the authors'
# pasted tiles, for the stripe figure; and a user's scan through a model card, for the README's figure.


# One rule per subject set (a split of a dataset), each job the set's LR volumes of one LR set and variant.
for subject_set in PLAN.study.subject_sets:

    rule:
        name:
            f"super_resolve_{subject_set.name}"
        input:
            unpack(PLAN.super_resolve.set_input(subject_set)),
        output:
            PLAN.super_resolve.outputs(subject_set),
        log:
            f"results/logs/super_resolve/{subject_set.dataset}/{{degradation}}/{{variant}}/{subject_set.split}.log",
        benchmark:
            f"results/benchmarks/super_resolve/{subject_set.dataset}/{{degradation}}/{{variant}}/{subject_set.split}.tsv"
        conda:
            ENV
        threads: config["threads"]
        resources:
            **PLAN.study.gpu_resources(1),
            **STAGE_RESOURCES["super_resolve"],
        params:
            options=PLAN.super_resolve.options,
        shell:
            "mrisr super-resolve {params.options} --threads {threads} > {log:q} 2>&1"


# The authors' inference: non-overlapping tiles pasted side by side, for the stripe figure (one subject).
rule super_resolve_pasted:
    input:
        unpack(PLAN.super_resolve.input),
    output:
        path("sr_pasted"),
    log:
        "results/logs/super_resolve_pasted/{dataset}/{degradation}/{variant}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/super_resolve_pasted/{dataset}/{degradation}/{variant}/sub-{subject}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        **PLAN.study.gpu_resources(1),
    params:
        options=PLAN.super_resolve.pasted_options,
    shell:
        "mrisr super-resolve {params.options} --threads {threads} > {log:q} 2>&1"


rule super_resolve_scan:
    """A user's LR scan through a trained model as the README shows it: the model card's preprocessing applied and
    undone, the output on the scan's grid with halved voxels, in its units."""
    input:
        lr=path("scan_lr"),
        model=path("model", dataset=PLAN.study.dataset),
    output:
        path("scan_sr"),
    log:
        "results/logs/super_resolve/{dataset}/scan/{variant}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/super_resolve/{dataset}/scan/{variant}/sub-{subject}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        options=PLAN.super_resolve.scan_options,
    shell:
        "mrisr super-resolve {params.options} --threads {threads} > {log:q} 2>&1"
