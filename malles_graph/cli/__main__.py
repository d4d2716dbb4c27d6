from malles_graph.cli import main

main()
