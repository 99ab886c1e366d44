# super-resolve: whole LR volumes onto the HR reference grid (interpolation or a trained generator).


def super_resolve_inputs(wildcards):
    inputs = {
        "lr": f"results/lr/{wildcards.dataset}/{wildcards.degradation}/sub-{wildcards.subject}_T1w.nii.gz",
        "reference": hr_path(wildcards.dataset, wildcards.subject),
    }
    if config["variants"][wildcards.variant]["kind"] == "gan":
        inputs["model"] = f"results/models/{wildcards.dataset}/{wildcards.variant}/model.pt"
    return inputs


def super_resolve_method(wildcards, input):
    spec = config["variants"][wildcards.variant]
    if spec["kind"] == "gan":
        return f"--model {input.model}"
    return f"--interpolate {spec['mode']} --scale {config['scale']}"


rule super_resolve:
    input:
        unpack(super_resolve_inputs),
    output:
        "results/sr/{dataset}/{degradation}/{variant}/sub-{subject}_T1w.nii.gz",
    params:
        method=super_resolve_method,
        tile=config["inference"]["tile"],
        halo=config["inference"]["halo"],
    threads: config["threads"]
    log:
        "results/logs/super_resolve/{dataset}/{degradation}/{variant}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr super-resolve {input.lr} {output} {params.method} --reference {input.reference}"
        " --tile {params.tile} --halo {params.halo} --threads {threads} > {log} 2>&1"
