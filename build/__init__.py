"""staticlambda's build pipeline, stage by stage:

    interpreter     choose a Python that staticx accepts (no RPATH/RUNPATH)
    freeze          PyInstaller, onedir, with bootstrap.spec: runtime and handler in one program
    runtime_imports what the runtime really imports while serving (measured, for prune)
    prune           leave out what neither the handler nor the runtime uses
    botocore_models botocore's ~2,000 model files as one zip, read in place at run time
                    (its run-time hook: pyinstaller_hooks/rthooks/)
    static          staticx: that program's tree and every library it loads, in one static file
    loader          staticx's loader patched to stream (build/patches/), built once per machine
    verify          `ldd` and `file` must call the result static
    package         the deterministic function.zip and its .sha256
    pipeline        the command line that runs the stages (`make build`, `make zip`)
    rie             the official Runtime Interface Emulator, pinned and checksum-verified
    invoke          run a bootstrap under the emulator (`make invoke`)
    bench           the bootstrap beside awslambdaric under the emulator (`make bench`)
    deploy          upload to AWS Lambda (`make deploy`); with remote_invoke,
                    execution_role and aws_errors, the only modules that use boto3
    execution_role  the role CREATE_ROLE makes (its own logs only), and the only role it reuses
    redaction       credentials masked in deploy's output, also JSON-, URL-, base64-encoded

No stage imports the deploy: building never touches AWS.
"""
