# anatomy: does SR keep anatomy true? The HR test volumes, then the SR sets of the method and settings tables, one
# job per setting, segmented by the segment stage's network (trained on real HR) and by Atropos; papers.smk
# tabulates and draws them.


rule anatomy_hr:
    input:
        unpack(PLAN.anatomy.reference_input),
    output:
        **PLAN.anatomy.hr_outputs(),
    log:
        f"results/logs/anatomy/{PLAN.study.dataset}/hr.log",
    benchmark:
        f"results/benchmarks/anatomy/{PLAN.study.dataset}/hr.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        options=PLAN.anatomy.reference_options,
    shell:
        "mrisr anatomy {params.options} --threads {threads} > {log:q} 2>&1"


for anatomy_setting in PLAN.anatomy.settings():

    rule:
        name:
            PLAN.anatomy.rule(anatomy_setting)
        input:
            unpack(PLAN.anatomy.set_input(anatomy_setting)),
        output:
            PLAN.anatomy.outputs(anatomy_setting),
        log:
            f"results/logs/anatomy/{PLAN.study.dataset}/{anatomy_setting}.log",
        benchmark:
            f"results/benchmarks/anatomy/{PLAN.study.dataset}/{anatomy_setting}.tsv"
        conda:
            ENV
        threads: config["threads"]
        params:
            options=PLAN.anatomy.set_options(anatomy_setting),
        shell:
            "mrisr anatomy {params.options} --threads {threads} > {log:q} 2>&1"
