"""staticlambda's build pipeline, stage by stage:

    interpreter     choose a Python that staticx accepts (no RPATH/RUNPATH)
    buildenv        the function's own build environment: build pins + its requirements
    handler_name    HANDLER checked before anything is built: its form, module and function
    function_env    the function's environment (ENV_FILE, ENV): init check, invoke, deploy
    sources         SRC read first: every source compiles; its other files are data
    package_data    data files of the requirements' packages that no hook collects
    freeze          PyInstaller, onedir, with bootstrap.spec: runtime and handler in one program
    missing         imports of the user's code that nothing bundled provides (warn file)
    runtime_imports what the runtime really imports while serving (measured, for prune)
    prune           leave out what neither the handler nor the runtime uses
    botocore_models botocore's ~2,000 model files as one zip, read in place at run time
                    (its run-time hook: pyinstaller_hooks/rthooks/)
    static          staticx: that program's tree and every library it loads, in one static file
    loader          staticx's loader patched to stream (build/patches/), built once per machine
    elf, verify     the ELF headers (architecture, no interpreter); `ldd` and `file` must
                    call the result static
    initcheck       start the binary once: its init must reach /next (empty root, no network)
    package         the deterministic function.zip and its .sha256
    sbom            dist/bootstrap.cdx.json: what the bootstrap holds, as CycloneDX (sbom/)
    stages          the stages above in order, each named and timed; dist/ cleared first
    record          dist/bootstrap.inputs.json: what a bootstrap was built from, and
                    whether `make zip` must rebuild it
    pipeline        the command line that runs the stages (`make build`, `make zip`)
    command         what the command lines share: --help, make's words, one-line errors
    archroot        ARCH=arm64 on x86_64: the same stages in a cached arm64 Debian root (qemu)
    errors, paths   the build's one error; its places (the repository, .cache)
    rie             the official Runtime Interface Emulator, pinned and checksum-verified
    invoke          run a bootstrap under the emulator (`make invoke`)
    bench           the bootstrap beside awslambdaric under the emulator (`make bench`),
                    and with --managed-instances N invokes at once (bench/managed.py)
    compare         your events on the bootstrap and on awslambdaric 4.2.2, each a cold
                    start under the emulator, compared (`make compare`; compare/)
    runtime_api     a Runtime API the build serves itself (initcheck, runtime_imports, bench)
    image           `make image`: the bootstrap as an OCI image (only /bootstrap)
    aws             the AWS plumbing deploy and remote_invoke share (session, console, errors)
    deploy          upload to AWS Lambda (`make deploy`), or with PACKAGE=image push the OCI
                    archive to ECR and run it by digest; with remote_invoke, execution_role
                    and aws_errors, the only modules that use boto3
    execution_role  the role CREATE_ROLE makes (its own logs only), and the only role it reuses
    sam             one function of a SAM template, as `sam build` asks (staticlambda.mk)
    redaction       credentials masked in deploy's output, also JSON-, URL-, base64-encoded

No stage imports the deploy: building never touches AWS.
"""
