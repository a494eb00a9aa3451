print("genworker")
