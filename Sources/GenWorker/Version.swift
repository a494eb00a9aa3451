public enum GenWorkerVersion { public static let string = "0.1.0" }
