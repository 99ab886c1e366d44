# external: outside programs (variants of kind external, e.g. ECLARE) run on each LR volume in their own
# environment; super-resolve then puts what they wrote onto the HR grid. mrisr never imports them.


checkpoint external_environment:
    """An outside program's environment as a virtual environment built from its conda file's pins (without
    --use-conda); where pip cannot install them, only a status.json saying why, and the tables say not computed."""
    input:
        PLAN.external.environment_file,
    output:
        directory(path("external_env")),
    log:
        "results/logs/external_environment/{environment}.log",
    benchmark:
        "results/benchmarks/external_environment/{environment}.tsv"
    conda:
        ENV
    params:
        options=PLAN.external.install_options,
    shell:
        "mrisr external install {params.options} > {log:q} 2>&1"


# each planned evaluation asks the checkpoint whether the environment is there (docs/plugins.md)
PLAN.study.ask_environments(checkpoints.external_environment)


rule external_run:
    """One LR volume through the outside program, in its environment; its output folder as the program wrote it."""
    input:
        unpack(PLAN.external.run_input),
    output:
        directory(path("external_out")),
    log:
        "results/logs/external_run/{dataset}/{degradation}/{variant}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/external_run/{dataset}/{degradation}/{variant}/sub-{subject}.tsv"
    conda:
        PLAN.external.conda_file
    threads: config["threads"]
    params:
        command=PLAN.external.command,
        search_path=PLAN.external.search_path,
    shell:
        "export OMP_NUM_THREADS={threads} {params.search_path}; {params.command} > {log:q} 2>&1"
