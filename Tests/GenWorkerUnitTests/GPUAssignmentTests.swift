import XCTest

@testable import GenWorkerCore

/// Each slot its own block of `wan.gpus_per_job` devices; too few devices refused at start.
final class GPUAssignmentTests: XCTestCase {
    let eight = (0..<8).map { "GPU \($0): NVIDIA A100-SXM4-80GB (UUID: GPU-\($0)aa)" }.joined(separator: "\n") + "\n"

    func testTwoFourGPUJobsOnAnEightGPUBoxGetFourDevicesEach() throws {
        let plan = try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: eight, slots: 2, perJob: 4)
        XCTAssertEqual(plan.source, .nvidiaSMI)
        XCTAssertEqual(plan.slots, ["0,1,2,3", "4,5,6,7"])
    }

    func testTheWorkersOwnVisibleDevicesComeBeforeNvidiaSMIAndTheConfigBeforeBoth() throws {
        var plan = try GPUAssignment.plan(configured: [], visible: "4, 5,6,7", nvidiaSMIList: eight, slots: 2, perJob: 2)
        XCTAssertEqual(plan.source, .environment)
        XCTAssertEqual(plan.slots, ["4,5", "6,7"])
        plan = try GPUAssignment.plan(configured: ["GPU-a", "GPU-b"], visible: "4", nvidiaSMIList: eight, slots: 2, perJob: 1)
        XCTAssertEqual(plan.source, .configured)
        XCTAssertEqual(plan.slots, ["GPU-a", "GPU-b"])
    }

    func testMoreGPUsThanThereAreIsRefusedWithTheNumbers() {
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: eight, slots: 3, perJob: 4)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("worker.slots (3) × wan.gpus_per_job (4) needs 12 GPU(s); this machine has 8 (nvidia-smi -L"), text)
        }
        // An empty CUDA_VISIBLE_DEVICES hides every GPU: nothing to hand out.
        XCTAssertThrowsError(try GPUAssignment.plan(configured: [], visible: "", nvidiaSMIList: eight, slots: 1, perJob: 1))
    }

    func testWithNothingToSayWhichDevicesThereAreSlotsAreAssumedAndOneSlotIsLeftAlone() throws {
        var plan = try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: nil, slots: 1, perJob: 1)
        XCTAssertEqual(plan.source, .none)
        XCTAssertEqual(plan.slots, [nil])
        plan = try GPUAssignment.plan(configured: [], visible: nil, nvidiaSMIList: "No devices were found\n", slots: 2, perJob: 2)
        XCTAssertEqual(plan.source, .assumed)
        XCTAssertEqual(plan.slots, ["0,1", "2,3"])
    }
}
