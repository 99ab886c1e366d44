# prepare: RAS+, brain crop, z-score; one rule for labelled datasets (T1w, mask, dseg), one for the others.


rule prepare:
    input:
        unpack(PLAN.prepare.input),
    output:
        t1w=path("hr", kind="T1w"),
        mask=path("hr", kind="mask"),
        dseg=path("hr", kind="dseg"),
    log:
        "results/logs/prepare/{dataset}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}/sub-{subject}.tsv"
    wildcard_constraints:
        dataset=PLAN.prepare.dataset_pattern(labelled=True),
    conda:
        ENV
    params:
        options=PLAN.prepare.options,
    shell:
        "mrisr prepare {params.options} > {log:q} 2>&1"


use rule prepare as prepare_unlabelled with:
    output:
        t1w=path("hr", kind="T1w"),
        mask=path("hr", kind="mask"),
    wildcard_constraints:
        dataset=PLAN.prepare.dataset_pattern(labelled=False),
