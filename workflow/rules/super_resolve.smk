# super-resolve: whole LR volumes onto the HR reference grid (interpolation or a trained generator); the authors'
# pasted tiles, for the stripe figure; and a user's scan through a model card, for the README's figure.


rule super_resolve:
    input:
        unpack(PLAN.super_resolve.input),
    output:
        path("sr"),
    log:
        "results/logs/super_resolve/{dataset}/{degradation}/{variant}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/super_resolve/{dataset}/{degradation}/{variant}/sub-{subject}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        **PLAN.study.gpu_resources(1),
    params:
        method=PLAN.super_resolve.method,
        tile=config["inference"]["tile"],
        halo=config["inference"]["halo"],
        reconstruct_tile=config["inference"]["reconstruct_tile"],
        batch=config["inference"]["batch"],
        precision=PLAN.super_resolve.precision(),
        acceleration=PLAN.super_resolve.acceleration(),
    shell:
        "mrisr super-resolve {input.lr:q} {output:q} {params.method} --reference {input.reference:q}"
        " --tile {params.tile:q} --halo {params.halo:q} --reconstruct-tile {params.reconstruct_tile:q} --batch {params.batch:q}"
        " --precision {params.precision:q} {params.acceleration} --threads {threads} > {log:q} 2>&1"


rule super_resolve_pasted:
    """The authors' inference: non-overlapping tiles pasted side by side, for the stripe figure."""
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
        method=PLAN.super_resolve.method,
        tile=config["papers"]["disgan"]["pasted_tile"],
        batch=config["inference"]["batch"],
        precision=PLAN.super_resolve.precision(),
        acceleration=PLAN.super_resolve.acceleration(),
    shell:
        "mrisr super-resolve {input.lr:q} {output:q} {params.method} --reference {input.reference:q}"
        " --tile {params.tile:q} --batch {params.batch:q} --pasted --precision {params.precision:q}"
        " {params.acceleration} --threads {threads} > {log:q} 2>&1"


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
    shell:
        "mrisr super-resolve --model {input.model:q} {input.lr:q} {output:q} --threads {threads} > {log:q} 2>&1"
