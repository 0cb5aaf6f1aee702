"""staticlambda's build pipeline, stage by stage:

    interpreter  choose a Python that staticx accepts (no RPATH/RUNPATH)
    freeze       PyInstaller, onefile: the runtime and the handler in one program
    static       staticx: that program and every library it loads, in one static file
    verify       `ldd` and `file` must call the result static
    package      the deterministic function.zip and its .sha256
    pipeline     the command line that runs the stages (`make build`, `make zip`)
    rie          the official Runtime Interface Emulator, pinned and checksum-verified
    invoke       run a bootstrap under the emulator (`make invoke`)
    deploy       upload to AWS Lambda (`make deploy`); the only module that uses boto3

No stage imports the deploy: building never touches AWS.
"""
