# super-resolve: whole LR volumes onto the HR reference grid (interpolation or a trained generator).


rule super_resolve:
    input:
        unpack(super_resolve_inputs),
    output:
        "results/sr/{dataset}/{degradation}/{variant}/sub-{subject}_T1w.nii.gz",
    params:
        method=super_resolve_method,
        tile=config["inference"]["tile"],
        halo=config["inference"]["halo"],
        reconstruct_tile=config["inference"]["reconstruct_tile"],
        batch=config["inference"]["batch"],
    threads: config["threads"]
    benchmark:
        "results/benchmarks/super_resolve/{dataset}/{degradation}/{variant}/sub-{subject}.tsv",
    log:
        "results/logs/super_resolve/{dataset}/{degradation}/{variant}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr super-resolve {input.lr} {output} {params.method} --reference {input.reference}"
        " --tile {params.tile} --halo {params.halo} --reconstruct-tile {params.reconstruct_tile} --batch {params.batch}"
        " --threads {threads} > {log} 2>&1"


rule super_resolve_pasted:
    """The authors' inference: non-overlapping tiles pasted side by side, for the stripe figure."""
    input:
        unpack(super_resolve_inputs),
    output:
        "results/sr_pasted/{dataset}/{degradation}/{variant}/sub-{subject}_T1w.nii.gz",
    params:
        method=super_resolve_method,
        tile=config["papers"]["disgan"]["pasted_tile"],
    threads: config["threads"]
    benchmark:
        "results/benchmarks/super_resolve_pasted/{dataset}/{degradation}/{variant}/sub-{subject}.tsv"
    log:
        "results/logs/super_resolve_pasted/{dataset}/{degradation}/{variant}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr super-resolve {input.lr} {output} {params.method} --reference {input.reference}"
        " --tile {params.tile} --pasted --threads {threads} > {log} 2>&1"
