from trace_core.cli.main import main

main()
