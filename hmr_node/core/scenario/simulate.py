"""Simulating a scenario: robot path, odometry, people, occlusion and 2D detections as arrays.

:func:`simulate_scenario` turns a :class:`ScenarioConfig`, a body model and one motion clip per
person into a :class:`SimulatedScenario` of per-frame numpy arrays (no ROS types); the bag
writer (:mod:`hmr_node.tools.scenario`) only serialises them, and :class:`ScenarioImages`
renders the frames lazily. Random streams are independent per concern (robot path, odometry
noise, placement, each person's keypoint noise, track ids, colours), all derived from
``config.seed``, so turning one effect off does not change the others.

Frames: the ground-truth world is the ``odom`` frame without drift (odometry starts at the
true pose at t = 0 and then drifts away from it); the camera frame is the optical frame.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import torch

from hmr_node.core.body.model import BodyModel
from hmr_node.core.body.skeleton import NUM_COCO17, SMPL_PARENTS
from hmr_node.core.data.motion import MotionClip
from hmr_node.core.geometry.camera import PinholeCamera
from hmr_node.core.geometry.frames import transform_smpl_root
from hmr_node.core.geometry.rotations import axis_angle_to_matrix
from hmr_node.core.scenario.camera_rig import base_from_optical, make_camera
from hmr_node.core.scenario.config import ScenarioConfig
from hmr_node.core.scenario.keypoint_noise import corrupt_keypoints
from hmr_node.core.scenario.looping import loop_clip
from hmr_node.core.scenario.occlusion import capsules_from_rest, occluded_keypoints
from hmr_node.core.scenario.odometry import (PlanarTrajectory, odometry_covariances,
                                             simulate_odometry, simulate_true_path)
from hmr_node.core.scenario.people import Placement, place_people
from hmr_node.core.scenario.render import (BackgroundRenderer, body_part_albedo,
                                           face_incidence, orient_faces_outward, render_meshes)

MIN_DEPTH = 0.1  # keypoints closer than this to the camera plane are "behind the camera", metres

_SHIRTS = ((200, 60, 50), (50, 90, 170), (60, 140, 80), (230, 190, 60), (140, 70, 150),
           (235, 235, 235), (40, 40, 40), (220, 120, 40))
_TROUSERS = ((40, 50, 80), (60, 60, 60), (110, 90, 60), (30, 30, 30), (90, 110, 140))


@dataclass(frozen=True)
class SimulatedPerson:
    """Ground truth and simulated detections of one person (T frames; NaN where inactive).

    index: ground-truth person index (0..P-1).
    motion: name of the motion clip.
    source, synthetic, attribution: provenance of the motion (from the clip).
    betas: (S,) shape coefficients.
    pelvis_rest: (3,) rest pelvis joint J0(betas), metres.
    placement: where and when the clip plays.
    clip_frames: frames of the motion clip as loaded.
    loop: (i, j) when the clip was lengthened by repeating its frames [i, j), else None.
    active: (T,) bool, the person exists in this frame.
    body_pose: (T, 23, 3, 3) parent-relative joint rotations (frame independent).
    world_orient: (T, 3, 3) global orientation in the world (odom) frame.
    world_transl: (T, 3) SMPL transl in the world frame, metres.
    world_root: (T, 3) pelvis joint in the world frame, metres.
    camera_orient: (T, 3, 3) global orientation in the camera optical frame.
    camera_transl: (T, 3) SMPL transl in the camera frame, metres.
    camera_root: (T, 3) pelvis joint in the camera frame, metres.
    keypoints_3d: (T, 17, 3) COCO-17 keypoints in the camera frame, metres.
    uv_true: (T, 17, 2) their exact projections, pixels (NaN behind the camera).
    occluded: (T, 17) bool, hidden by another person.
    visible: (T, 17) bool, active, in front of the camera, inside the image and not occluded.
    uv: (T, 17, 2) simulated detections, pixels (0 where conf = 0).
    conf: (T, 17) detection confidences in [0, 1] (0 = not reported).
    track_id: (T,) keypoint track id reported by the simulated tracker.
    shirt, trousers: RGB colours used by the renderer.
    """

    index: int
    motion: str
    source: str
    synthetic: bool
    attribution: str
    betas: np.ndarray
    pelvis_rest: np.ndarray
    placement: Placement
    clip_frames: int
    loop: tuple[int, int] | None
    active: np.ndarray
    body_pose: np.ndarray
    world_orient: np.ndarray
    world_transl: np.ndarray
    world_root: np.ndarray
    camera_orient: np.ndarray
    camera_transl: np.ndarray
    camera_root: np.ndarray
    keypoints_3d: np.ndarray
    uv_true: np.ndarray
    occluded: np.ndarray
    visible: np.ndarray
    uv: np.ndarray
    conf: np.ndarray
    track_id: np.ndarray
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]

    @property
    def detected(self) -> np.ndarray:
        """(T,) bool: the simulated detector reports this person (some confidence > 0)."""
        return np.any(self.conf > 0, axis=1)


@dataclass(frozen=True)
class SimulatedScenario:
    """Everything one recording holds, as arrays over T frames.

    config: the scenario configuration.
    camera: camera intrinsics.
    times: (T,) seconds from the first frame.
    true_path: the robot's true base_link trajectory in the world.
    odometry: the robot's odometry (drifting) in the odom frame.
    odom_pose_cov, odom_twist_cov: (T, 36) covariances for nav_msgs/Odometry.
    base_from_optical_R: (3, 3) static R_base_from_optical.
    base_from_optical_t: (3,) static optical origin in base_link, metres.
    camera_R: (T, 3, 3) true R_world_from_optical.
    camera_t: (T, 3) true camera position in the world, metres.
    people: one :class:`SimulatedPerson` per person.
    warnings: human-readable notes (e.g. placements that broke a rule).
    """

    config: ScenarioConfig
    camera: PinholeCamera
    times: np.ndarray
    true_path: PlanarTrajectory
    odometry: PlanarTrajectory
    odom_pose_cov: np.ndarray
    odom_twist_cov: np.ndarray
    base_from_optical_R: np.ndarray
    base_from_optical_t: np.ndarray
    camera_R: np.ndarray
    camera_t: np.ndarray
    people: tuple[SimulatedPerson, ...]
    warnings: tuple[str, ...]


def planar_to_pose(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) x, y, yaw -> R (T, 3, 3), t (T, 3) of base_link in the world (z = 0)."""
    c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
    R = np.zeros((pose.shape[0], 3, 3))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1.0
    t = np.zeros((pose.shape[0], 3))
    t[:, :2] = pose[:, :2]
    return R, t


def global_rotations(orient: np.ndarray, body_pose: np.ndarray) -> np.ndarray:
    """Accumulated joint rotations: (..., 3, 3), (..., 23, 3, 3) -> (..., 24, 3, 3)."""
    G = [orient]
    for j in range(1, len(SMPL_PARENTS)):
        G.append(G[SMPL_PARENTS[j]] @ body_pose[..., j - 1, :, :])
    return np.stack(G, axis=-3)


def _aa_to_matrix(aa: np.ndarray) -> np.ndarray:
    return axis_angle_to_matrix(torch.as_tensor(np.asarray(aa, np.float64))).numpy()


def _body_betas(body: BodyModel, betas: np.ndarray) -> np.ndarray:
    b = np.zeros(body.num_betas)
    n = min(body.num_betas, betas.shape[0])
    b[:n] = betas[:n]
    return b


def simulate_scenario(config: ScenarioConfig, body: BodyModel,
                      clips: list[MotionClip]) -> SimulatedScenario:
    """Simulate one recording.

    config: the scenario (its ``people`` must equal ``len(clips)``).
    body: body model (float64 recommended: ground truth is compared to float32 messages).
    clips: one motion clip per person, at ``config.fps``.
    """
    if len(clips) != config.people:
        raise ValueError(f"clips: expected {config.people} motion clips (config.people), "
                         f"got {len(clips)}")
    for clip in clips:
        if abs(clip.fps - config.fps) > 1e-6 * config.fps:
            raise ValueError(f"clips: motion {clip.name!r} is at {clip.fps} fps, the scenario at "
                             f"{config.fps} fps (resample it first)")
    T, fps = config.frames, float(config.fps)
    seeds = np.random.SeedSequence(config.seed).spawn(6)
    rng_path, rng_odom, rng_place, rng_kp, rng_ids, rng_look = (np.random.default_rng(s)
                                                                 for s in seeds)
    camera = make_camera(config.camera)
    R_bo, t_bo = base_from_optical(config.camera)

    odo_cfg = replace(config.odometry, scale=config.odometry.scale * config.odom_drift)
    true_path = simulate_true_path(T, fps, rng_path, odo_cfg)
    odometry = simulate_odometry(true_path, fps, rng_odom, odo_cfg)
    pose_cov, twist_cov = odometry_covariances(odometry, odo_cfg)
    R_wb, t_wb = planar_to_pose(true_path.pose)
    cam_R = R_wb @ R_bo
    cam_t = np.einsum("tij,j->ti", R_wb, t_bo) + t_wb

    dt = torch.float64 if body.v_template.dtype == torch.float64 else torch.float32
    betas = [_body_betas(body, np.asarray(c.betas, np.float64)) for c in clips]
    pelvis_rest = [body.rest_joints(torch.as_tensor(b[None], dtype=dt))[0, 0].double().numpy()
                   for b in betas]
    original_frames = [c.num_frames for c in clips]
    loops: list[tuple[int, int] | None] = [None] * len(clips)
    if config.placement.loop_short_clips:
        clips = list(clips)
        for p, clip in enumerate(clips):
            if clip.num_frames < T:
                clips[p], i, j = loop_clip(clip, T + T // 2, pelvis_rest[p])
                loops[p] = (i, j)
    placements = place_people([np.asarray(c.transl, np.float64) + j0 for c, j0
                               in zip(clips, pelvis_rest)],
                              [np.asarray(c.global_orient) for c in clips], fps, cam_R, cam_t,
                              camera, rng_place, config.placement)
    warnings = [f"person {p} ({clips[p].name}): no placement satisfied every rule in "
                f"{pl.tries} tries (violation score {pl.violation:.2f})"
                for p, pl in enumerate(placements) if pl.violation > 0]

    kp_cfg = replace(config.keypoint_noise, scale=config.keypoint_noise.scale * config.kp_noise)
    occ_cfg = replace(config.occlusion_model,
                      scale=config.occlusion_model.scale * config.occlusion)
    weights = body.weights.double().numpy()

    # ---- per person ground truth in world and camera frames
    raw = []
    for p, (clip, pl) in enumerate(zip(clips, placements)):
        active = pl.active(T, clip.num_frames)
        k = np.flatnonzero(active)
        ck = k + pl.clip_offset
        nan3 = np.full((T, 3), np.nan)
        nanR = np.full((T, 3, 3), np.nan)
        go = _aa_to_matrix(np.asarray(clip.global_orient)[ck])
        bp = _aa_to_matrix(np.asarray(clip.body_pose)[ck])
        tr = np.asarray(clip.transl, np.float64)[ck]
        j0 = torch.as_tensor(pelvis_rest[p])
        R_pw = torch.as_tensor(pl.rotation())
        go_w, tr_w = transform_smpl_root(R_pw, torch.as_tensor(pl.translation),
                                         torch.as_tensor(go), torch.as_tensor(tr), j0)
        Rc = torch.as_tensor(cam_R[k]).transpose(-1, -2)           # R_optical_from_world
        tc = -(Rc @ torch.as_tensor(cam_t[k])[..., None])[..., 0]
        go_c, tr_c = transform_smpl_root(Rc, tc, go_w, tr_w, j0)
        b = torch.as_tensor(np.repeat(betas[p][None], k.size, 0), dtype=dt)
        with torch.no_grad():
            joints_c = body.joints(b, go_c.to(dt), torch.as_tensor(bp, dtype=dt),
                                   tr_c.to(dt)).double().numpy()
            kp_c = body.keypoints(b, go_c.to(dt), torch.as_tensor(bp, dtype=dt),
                                  tr_c.to(dt)).double().numpy()
            rest = body(torch.as_tensor(betas[p][None], dtype=dt),
                        torch.zeros(1, 3, dtype=dt), torch.zeros(1, 69, dtype=dt))
        capsules = capsules_from_rest(rest.vertices[0].double().numpy(),
                                      rest.joints[0].double().numpy(), weights)

        def fill(x, base):
            out = base.copy()
            out[k] = x
            return out

        body_pose = np.full((T, 23, 3, 3), np.nan)
        body_pose[k] = bp
        world_root = fill(np.einsum("tij,tj->ti", cam_R[k], joints_c[:, 0]) + cam_t[k], nan3)
        G = global_rotations(go_c.numpy(), bp)
        cap_a, cap_b = capsules.segments(joints_c, G)
        raw.append(dict(active=active, k=k, body_pose=body_pose,
                        world_orient=fill(go_w.numpy(), nanR), world_transl=fill(tr_w.numpy(), nan3),
                        world_root=world_root, camera_orient=fill(go_c.numpy(), nanR),
                        camera_transl=fill(tr_c.numpy(), nan3),
                        camera_root=fill(joints_c[:, 0], nan3),
                        keypoints_3d=fill(kp_c, np.full((T, NUM_COCO17, 3), np.nan)),
                        cap_a=cap_a, cap_b=cap_b, capsules=capsules))

    # ---- occlusion between people, frame by frame
    P = len(raw)
    occluded = np.zeros((P, T, NUM_COCO17), bool)
    if P > 1 and occ_cfg.scale > 0:
        C = max(r["capsules"].radius.shape[0] for r in raw)
        for t in range(T):
            act = np.array([r["active"][t] for r in raw])
            if act.sum() < 2:
                continue
            kp = np.zeros((P, NUM_COCO17, 3))
            a = np.zeros((P, C, 3))
            b = np.zeros((P, C, 3))
            rad = np.zeros((P, C))
            for p, r in enumerate(raw):
                if act[p]:
                    i = np.searchsorted(r["k"], t)
                    n = r["capsules"].radius.shape[0]
                    kp[p] = r["keypoints_3d"][t]
                    a[p, :n], b[p, :n], rad[p, :n] = r["cap_a"][i], r["cap_b"][i], \
                        r["capsules"].radius
            occluded[:, t] = occluded_keypoints(kp, act, a, b, rad, occ_cfg)

    # ---- detections, track ids, colours
    kp_rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(
        int(rng_kp.integers(2 ** 63))).spawn(max(P, 1))]
    switch_u = rng_ids.random((T, P))
    next_id = P
    current = list(range(P))
    track_ids = np.zeros((P, T), np.int64)
    people = []
    for p, r in enumerate(raw):
        kp3 = r["keypoints_3d"]
        in_front = np.nan_to_num(kp3[..., 2], nan=-1.0) > MIN_DEPTH
        uv_true = np.where(in_front[..., None], camera.project(np.nan_to_num(kp3, nan=1.0)),
                           np.nan)
        inside = camera.in_image(np.nan_to_num(uv_true, nan=-1.0))
        visible = r["active"][:, None] & in_front & inside & ~occluded[p]
        uv, conf = corrupt_keypoints(np.nan_to_num(uv_true, nan=-1.0), visible,
                                     (camera.width, camera.height), kp_rngs[p], kp_cfg)
        r["uv_true"], r["visible"], r["uv"], r["conf"] = uv_true, visible, uv, conf
    for t in range(T):
        for p, r in enumerate(raw):
            if r["conf"][t].any() and switch_u[t, p] < config.id_switch_prob:
                current[p] = next_id
                next_id += 1
            track_ids[p, t] = current[p]
    for p, (r, clip, pl) in enumerate(zip(raw, clips, placements)):
        people.append(SimulatedPerson(
            index=p, motion=clip.name, source=clip.source, synthetic=bool(clip.synthetic),
            attribution=clip.attribution, betas=betas[p], pelvis_rest=pelvis_rest[p],
            placement=pl, clip_frames=original_frames[p], loop=loops[p], active=r["active"],
            body_pose=r["body_pose"],
            world_orient=r["world_orient"], world_transl=r["world_transl"],
            world_root=r["world_root"], camera_orient=r["camera_orient"],
            camera_transl=r["camera_transl"], camera_root=r["camera_root"],
            keypoints_3d=r["keypoints_3d"], uv_true=r["uv_true"], occluded=occluded[p],
            visible=r["visible"], uv=r["uv"], conf=r["conf"], track_id=track_ids[p],
            shirt=_SHIRTS[int(rng_look.integers(len(_SHIRTS)))],
            trousers=_TROUSERS[int(rng_look.integers(len(_TROUSERS)))]))
    return SimulatedScenario(
        config=config, camera=camera, times=true_path.times, true_path=true_path,
        odometry=odometry, odom_pose_cov=pose_cov, odom_twist_cov=twist_cov,
        base_from_optical_R=R_bo, base_from_optical_t=t_bo, camera_R=cam_R, camera_t=cam_t,
        people=tuple(people), warnings=tuple(warnings))


class ScenarioImages:
    """Renders the frames of a simulated scenario on demand.

    sim: the simulated scenario.
    body: the body model the scenario was simulated with.
    """

    def __init__(self, sim: SimulatedScenario, body: BodyModel):
        self.sim = sim
        # images do not need float64: render with a float32 copy of the body
        self.body = copy.deepcopy(body).float() if body.v_template.dtype != torch.float32 else body
        cam = sim.camera
        self.background = BackgroundRenderer(cam.K, cam.width, cam.height, sim.config.render_style)
        with torch.no_grad():
            rest = self.body(torch.zeros(1, body.num_betas), torch.zeros(1, 3),
                             torch.zeros(1, 69)).vertices[0]
        self.faces = orient_faces_outward(rest.double().numpy(), body.faces.numpy())
        self.incidence = face_incidence(self.faces, body.num_vertices)
        weights = body.weights.double().numpy()
        self.albedo = [body_part_albedo(weights, p.shirt, p.trousers) for p in sim.people]

    def frame(self, t: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of frame t."""
        sim = self.sim
        image = self.background.render(sim.camera_R[t], sim.camera_t[t])
        people = [p for p in sim.people if p.active[t]]
        if not people:
            return image
        dtype = torch.float32
        with torch.no_grad():
            verts = self.body(
                torch.as_tensor(np.stack([p.betas for p in people]), dtype=dtype),
                torch.as_tensor(np.stack([p.camera_orient[t] for p in people]), dtype=dtype),
                torch.as_tensor(np.stack([p.body_pose[t] for p in people]), dtype=dtype),
                torch.as_tensor(np.stack([p.camera_transl[t] for p in people]), dtype=dtype),
            ).vertices.numpy()
        meshes = [(verts[i], self.faces, self.albedo[p.index], self.incidence)
                  for i, p in enumerate(people)]
        return render_meshes(image, meshes, sim.camera.K, sim.camera_R[t],
                             sim.config.render_style)


__all__ = ["SimulatedPerson", "SimulatedScenario", "ScenarioImages", "simulate_scenario",
           "planar_to_pose", "global_rotations", "MIN_DEPTH"]
