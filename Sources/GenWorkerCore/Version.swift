/// The version a worker reports in its heartbeats (`genworker workers`) and `genworker --version`.
public enum GenWorkerVersion {
    public static let current = "0.5.0"
}
