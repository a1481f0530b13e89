from pvc.entry import run

run()
