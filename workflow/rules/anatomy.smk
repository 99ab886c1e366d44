# anatomy: does SR keep anatomy true? The HR test volumes, then each SR set of the method and settings tables,
# segmented by the segment stage's network (trained on real HR) and by Atropos; papers.smk tabulates and draws them.


rule anatomy_hr:
    input:
        unpack(PLAN.anatomy.reference_input),
    output:
        table=path("anatomy_hr", file="volumes.csv"),
        labels=PLAN.anatomy.labels("anatomy_hr"),
    log:
        "results/logs/anatomy/{dataset}/hr.log",
    benchmark:
        "results/benchmarks/anatomy/{dataset}/hr.tsv"
    wildcard_constraints:
        dataset=PLAN.study.dataset,
    conda:
        ENV
    threads: config["threads"]
    params:
        options=PLAN.anatomy.reference_options,
    shell:
        "mrisr anatomy {params.options} --threads {threads} > {log:q} 2>&1"


rule anatomy:
    input:
        unpack(PLAN.anatomy.input),
    output:
        table=path("anatomy", file="volumes.csv"),
        labels=PLAN.anatomy.labels("anatomy"),
    log:
        "results/logs/anatomy/{dataset}/{degradation}/{variant}.log",
    benchmark:
        "results/benchmarks/anatomy/{dataset}/{degradation}/{variant}.tsv"
    wildcard_constraints:
        dataset=PLAN.study.dataset,
    conda:
        ENV
    threads: config["threads"]
    params:
        options=PLAN.anatomy.options,
    shell:
        "mrisr anatomy {params.options} --threads {threads} > {log:q} 2>&1"
