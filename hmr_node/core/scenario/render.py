"""A small software renderer for scenario images: shaded body meshes over a floor and sky.

Everything is vectorised numpy (no OpenGL):

* **Rasteriser** (:func:`rasterize`): back faces are culled (sign of the projected area, meshes
  oriented outward by :func:`orient_faces_outward`), every remaining triangle enumerates the integer
  pixel centres of its bounding box (OpenCV convention: pixel (i, j) has its centre at
  u = i, v = j), keeps those with non-negative barycentric coordinates (edge functions), and a
  z-buffer keeps the nearest fragment per pixel. Depth is interpolated as 1/z (linear in screen
  space), attributes perspective-correctly. Sub-pixel triangles of a closed mesh leave no holes
  because coverage is decided at pixel centres.
* **Shading**: Gouraud-interpolated Lambert shading per vertex,
  ``I = ambient + key * max(0, n . l_world) + fill * max(0, -n . ray)`` (a light from above in
  the world plus a fill light from the camera), times a per-vertex albedo (skin, shirt,
  trousers, shoes picked by the dominant skinning joint, :func:`body_part_albedo`).
* **Background** (:func:`render_background`): a checkerboard floor on the world plane z = 0
  with distance fog towards a sky gradient, from one ray per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

# SMPL joints whose vertices are trousers / shoes / skin; the rest is shirt.
_LEG_JOINTS = (0, 1, 2, 4, 5)
_SHOE_JOINTS = (7, 8, 10, 11)
_SKIN_JOINTS = (12, 15, 20, 21, 22, 23)


@dataclass(frozen=True)
class RenderConfig:
    """Lighting and background.

    ambient: ambient light intensity.
    key: intensity of the world light from ``key_dir``.
    key_dir: (3,) direction towards the key light in the world (z up), normalised on use.
    fill: intensity of the fill light from the camera.
    checker_size: floor checker square side, metres.
    floor_light: (3,) RGB of the light floor squares, 0-255.
    floor_dark: (3,) RGB of the dark floor squares, 0-255.
    horizon: (3,) RGB of the haze at the horizon, 0-255.
    sky: (3,) RGB of the sky at the top of the image, 0-255.
    fog_distance: distance at which the floor is 63 % haze, metres.
    near: triangles with a vertex closer than this (camera z) are dropped, metres.
    """

    ambient: float = 0.30
    key: float = 0.55
    key_dir: tuple[float, float, float] = (0.3, 0.4, 1.0)
    fill: float = 0.35
    checker_size: float = 0.5
    floor_light: tuple[int, int, int] = (168, 164, 156)
    floor_dark: tuple[int, int, int] = (120, 117, 112)
    horizon: tuple[int, int, int] = (196, 204, 212)
    sky: tuple[int, int, int] = (130, 160, 205)
    fog_distance: float = 30.0
    near: float = 0.05

    def __post_init__(self) -> None:
        for name in ("ambient", "key", "fill", "checker_size", "fog_distance", "near"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"RenderConfig.{name} must be finite and >= 0, got {value!r}")
        if self.checker_size <= 0 or self.fog_distance <= 0:
            raise ValueError("RenderConfig.checker_size and fog_distance must be > 0, got "
                             f"{self.checker_size!r}, {self.fog_distance!r}")


def orient_faces_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces with the winding flipped if needed so that right-handed normals point outward.

    vertices: (V, 3) a closed(ish) mesh.
    faces: (F, 3) triangles.
    Returns (F, 3); the signed volume (sum of det(v0, v1, v2) / 6) is made positive.
    """
    v = vertices[faces]
    volume = np.sum(np.einsum("fi,fi->f", v[:, 0], np.cross(v[:, 1], v[:, 2]))) / 6.0
    return faces if volume >= 0 else faces[:, ::-1].copy()


def body_part_albedo(weights: np.ndarray, shirt, trousers, skin=(224, 172, 140),
                     shoes=(50, 45, 45)) -> np.ndarray:
    """Per-vertex albedo from the dominant skinning joint.

    weights: (V, 24) skinning weights.
    shirt, trousers, skin, shoes: RGB triplets, 0-255.
    Returns (V, 3) float32 albedo in [0, 1].
    """
    owner = np.argmax(weights, axis=1)
    albedo = np.tile(np.asarray(shirt, np.float32), (owner.shape[0], 1))
    for joints, rgb in ((_LEG_JOINTS, trousers), (_SHOE_JOINTS, shoes), (_SKIN_JOINTS, skin)):
        albedo[np.isin(owner, joints)] = rgb
    return albedo / 255.0


def face_incidence(faces: np.ndarray, num_vertices: int) -> sparse.csr_matrix:
    """(V, F) sparse matrix with a 1 where vertex v belongs to face f."""
    F = faces.shape[0]
    return sparse.csr_matrix((np.ones(3 * F, np.float32), (faces.reshape(-1), np.repeat(
        np.arange(F), 3))), shape=(num_vertices, F))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray,
                   incidence: sparse.csr_matrix | None = None) -> np.ndarray:
    """Area-weighted unit vertex normals.

    vertices: (V, 3); faces: (F, 3); incidence: optional cached :func:`face_incidence`.
    Returns (V, 3).
    """
    v = vertices[faces]
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    if incidence is None:
        incidence = face_incidence(faces, vertices.shape[0])
    n = incidence @ fn
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Fragments:
    """The visible fragment of every covered pixel.

    pixel: (M,) flat pixel index v * width + u.
    face: (M,) index of the covering triangle.
    weights: (M, 3) perspective-correct barycentric weights of its vertices.
    depth: (M,) camera z, metres.
    """

    pixel: np.ndarray
    face: np.ndarray
    weights: np.ndarray
    depth: np.ndarray


def rasterize(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, width: int, height: int,
              near: float = 0.05) -> Fragments:
    """Z-buffered rasterisation of a triangle mesh (back faces culled).

    vertices: (V, 3) camera optical frame, metres.
    faces: (F, 3) outward-oriented triangles (see :func:`orient_faces_outward`).
    K: (3, 3) intrinsics (no skew assumed in the bounding boxes; skew is handled exactly in
        the coverage test).
    width, height: image size, pixels.
    near: triangles with a vertex closer than this are dropped, metres.
    """
    z = vertices[:, 2]
    zs = np.maximum(z, near)
    xn, yn = vertices[:, 0] / zs, vertices[:, 1] / zs
    # elementwise K (thin BLAS products are slow when cores are shared)
    uv = np.stack([K[0, 0] * xn + K[0, 1] * yn + K[0, 2], K[1, 1] * yn + K[1, 2]], -1)
    t = uv[faces]                                                      # (F, 3, 2)
    # signed image-space area: for triangles in front of the camera its sign is the sign of
    # n . v0 (outward normal n), so area < 0 <=> the face looks at the camera
    face_area = ((t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1])
                 - (t[:, 1, 1] - t[:, 0, 1]) * (t[:, 2, 0] - t[:, 0, 0]))
    zf = z[faces]
    keep = (face_area < -1e-12) & (zf[:, 0] > near) & (zf[:, 1] > near) & (zf[:, 2] > near)
    f_idx = np.flatnonzero(keep)
    t = t[f_idx]                                                       # (F', 3, 2)
    x0 = np.maximum(np.ceil(t[..., 0].min(1)), 0).astype(np.int64)
    x1 = np.minimum(np.floor(t[..., 0].max(1)), width - 1).astype(np.int64)
    y0 = np.maximum(np.ceil(t[..., 1].min(1)), 0).astype(np.int64)
    y1 = np.minimum(np.floor(t[..., 1].max(1)), height - 1).astype(np.int64)
    bw = x1 - x0 + 1
    count = np.where((bw > 0) & (y1 >= y0), bw * (y1 - y0 + 1), 0)
    nz = count > 0
    f_idx, t, x0, y0, bw, count = f_idx[nz], t[nz], x0[nz], y0[nz], bw[nz], count[nz]
    if f_idx.size == 0:
        e = np.zeros(0, np.int64)
        return Fragments(e, e, np.zeros((0, 3)), np.zeros(0))
    # Barycentrics and 1/z are affine in screen space: l_i(u, v) = A_i u + B_i v + C_i with
    # l0 = ((c - b) x (p - b)) / area, l1 = ((a - c) x (p - c)) / area (edge functions).
    t = t.astype(np.float64)
    a, b, c = t[:, 0], t[:, 1], t[:, 2]
    area = face_area[f_idx].astype(np.float64)
    A0, B0 = -(c[:, 1] - b[:, 1]) / area, (c[:, 0] - b[:, 0]) / area
    C0 = -(A0 * b[:, 0] + B0 * b[:, 1])
    A1, B1 = -(a[:, 1] - c[:, 1]) / area, (a[:, 0] - c[:, 0]) / area
    C1 = -(A1 * c[:, 0] + B1 * c[:, 1])
    iz = 1.0 / z[faces[f_idx]].astype(np.float64)                      # (F', 3)
    Az = A0 * (iz[:, 0] - iz[:, 2]) + A1 * (iz[:, 1] - iz[:, 2])
    Bz = B0 * (iz[:, 0] - iz[:, 2]) + B1 * (iz[:, 1] - iz[:, 2])
    Cz = C0 * (iz[:, 0] - iz[:, 2]) + C1 * (iz[:, 1] - iz[:, 2]) + iz[:, 2]
    # enumerate each triangle's bounding-box pixels
    owner = np.repeat(np.arange(f_idx.size, dtype=np.int32), count)
    local = np.arange(owner.size, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    w_o = bw[owner]
    px = x0[owner] + local % w_o
    py = y0[owner] + local // w_o
    l0 = A0[owner] * px + B0[owner] * py + C0[owner]
    l1 = A1[owner] * px + B1[owner] * py + C1[owner]
    inside = (l0 >= 0) & (l1 >= 0) & (l0 + l1 <= 1)
    owner, px, py, l0, l1 = owner[inside], px[inside], py[inside], l0[inside], l1[inside]
    inv_depth = Az[owner] * px + Bz[owner] * py + Cz[owner]
    pixel = py * width + px
    # z-buffer: the nearest fragment (largest 1/z) wins
    best = np.full(width * height, -np.inf)
    np.maximum.at(best, pixel, inv_depth)
    win = inv_depth >= best[pixel]
    pixel, owner, l0, l1, inv_depth = pixel[win], owner[win], l0[win], l1[win], inv_depth[win]
    # ties (shared edges at equal depth): one fragment per pixel, the last one written
    slot = np.empty(width * height, np.int64)
    order = np.arange(pixel.size)
    slot[pixel] = order
    one = slot[pixel] == order
    pixel, owner, l0, l1, inv_depth = pixel[one], owner[one], l0[one], l1[one], inv_depth[one]
    lam = np.stack([l0, l1, 1.0 - l0 - l1], -1)
    weights = lam * iz[owner] / inv_depth[:, None]                     # perspective-correct
    return Fragments(pixel, f_idx[owner], weights, 1.0 / inv_depth)


class BackgroundRenderer:
    """Floor and sky for a fixed camera; :meth:`render` takes the camera pose per frame.

    K: (3, 3) intrinsics; width, height: pixels; config: colours and fog.
    Everything that depends only on the camera's tilt and height (sky colour, which pixels see
    the floor, their distance and haze) is cached, so a robot driving on the floor only pays
    for the checkerboard lookup per frame.
    """

    def __init__(self, K: np.ndarray, width: int, height: int, config: RenderConfig):
        u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        pix = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3)
        self.rays = pix @ np.linalg.inv(K).T                           # (H*W, 3) optical
        self.width, self.height, self.config = width, height, config
        self._key = None

    def _prepare(self, R: np.ndarray, cam_height: float) -> None:
        cfg = self.config
        rx, ry, rz = self.rays.T
        dz = rx * R[2, 0] + ry * R[2, 1] + rz * R[2, 2]                # world z of each ray
        norm = np.sqrt(rx * rx + ry * ry + rz * rz)
        horizon = np.asarray(cfg.horizon, np.float64)
        sky_t = np.clip(dz / norm * 3.0, 0.0, 1.0)[:, None]
        base = horizon + sky_t * (np.asarray(cfg.sky, np.float64) - horizon)
        self._base = np.clip(base + 0.5, 0, 255).astype(np.uint8)
        down = np.flatnonzero(dz < -1e-9)
        lam = -cam_height / dz[down]                                   # ray length to the floor
        fog = (1.0 - np.exp(-(lam * norm[down]) / cfg.fog_distance))[:, None]
        light = np.asarray(cfg.floor_light, np.float64) * (1 - fog) + fog * horizon
        dark = np.asarray(cfg.floor_dark, np.float64) * (1 - fog) + fog * horizon
        self._light = self._base.copy()
        self._light[down] = np.clip(light + 0.5, 0, 255).astype(np.uint8)
        self._dark = self._base.copy()
        self._dark[down] = np.clip(dark + 0.5, 0, 255).astype(np.uint8)
        self._down = down
        # floor hit points relative to the camera, in the world axes of the reference pose R0;
        # a later pose with the same tilt differs from R0 by a rotation about the vertical
        self._hx = lam * (rx[down] * R[0, 0] + ry[down] * R[0, 1] + rz[down] * R[0, 2])
        self._hy = lam * (rx[down] * R[1, 0] + ry[down] * R[1, 1] + rz[down] * R[1, 2])
        self._hx, self._hy = self._hx.astype(np.float32), self._hy.astype(np.float32)
        self._R0 = R.copy()
        self._key = (tuple(R[2]), cam_height)

    def render(self, R_world_from_optical: np.ndarray, camera_position: np.ndarray) -> np.ndarray:
        """R_world_from_optical: (3, 3); camera_position: (3,) world, metres (z above the floor).
        Returns (H, W, 3) uint8 RGB."""
        R = np.asarray(R_world_from_optical, np.float64)
        key = (tuple(R[2]), float(camera_position[2]))
        if key != self._key:
            self._prepare(R, float(camera_position[2]))
        Rz = R @ self._R0.T                                            # rotation about world z
        size = self.config.checker_size
        x = (camera_position[0] + Rz[0, 0] * self._hx + Rz[0, 1] * self._hy) / size
        y = (camera_position[1] + Rz[1, 0] * self._hx + Rz[1, 1] * self._hy) / size
        dark = np.zeros(self.width * self.height, bool)
        dark[self._down] = ((np.floor(x).astype(np.int64) + np.floor(y).astype(np.int64)) & 1) == 1
        color = np.where(dark[:, None], self._dark, self._light)
        return color.reshape(self.height, self.width, 3)


def shade_vertices(vertices: np.ndarray, faces: np.ndarray, albedo: np.ndarray,
                   R_world_from_optical: np.ndarray, config: RenderConfig,
                   incidence: sparse.csr_matrix | None = None) -> np.ndarray:
    """Per-vertex colour (Lambert, eq. in the module docstring).

    vertices: (V, 3) camera optical frame, metres.
    faces: (F, 3) outward-oriented triangles.
    albedo: (V, 3) in [0, 1].
    R_world_from_optical: (3, 3) camera orientation (for the world key light).
    config: lighting.
    incidence: optional cached :func:`face_incidence` of ``faces``.
    Returns (V, 3) float colours in [0, 255].
    """
    n = vertex_normals(vertices, faces, incidence)
    key = R_world_from_optical.T @ np.asarray(config.key_dir, np.float64)
    key /= np.linalg.norm(key)
    n_key = n[:, 0] * key[0] + n[:, 1] * key[1] + n[:, 2] * key[2]
    n_ray = np.sum(n * vertices, -1) / np.maximum(np.linalg.norm(vertices, axis=-1), 1e-9)
    intensity = (config.ambient + config.key * np.maximum(0.0, n_key)
                 + config.fill * np.maximum(0.0, -n_ray))
    return np.clip(255.0 * albedo * intensity[:, None], 0.0, 255.0)


def render_meshes(background: np.ndarray, meshes: list[tuple], K: np.ndarray,
                  R_world_from_optical: np.ndarray, config: RenderConfig) -> np.ndarray:
    """Draw shaded meshes over a background with one shared z-buffer.

    background: (H, W, 3) uint8 RGB (not modified).
    meshes: list of (vertices (V, 3) optical frame, outward faces (F, 3), albedo (V, 3)[,
        incidence]) with an optional cached :func:`face_incidence` of the faces.
    K: (3, 3) intrinsics.
    R_world_from_optical: (3, 3) camera orientation (for the world key light).
    config: lighting.
    Returns (H, W, 3) uint8 RGB.
    """
    H, W = background.shape[:2]
    image = background.copy()
    if not meshes:
        return image
    verts, faces, colors, base = [], [], [], 0
    for v, f, albedo, *incidence in meshes:
        verts.append(v)
        faces.append(f + base)
        colors.append(shade_vertices(v, f, albedo, R_world_from_optical, config,
                                     incidence[0] if incidence else None))
        base += v.shape[0]
    verts, faces, colors = np.concatenate(verts), np.concatenate(faces), np.concatenate(colors)
    frag = rasterize(verts, faces, K, W, H, config.near)
    rgb = np.einsum("mk,mkc->mc", frag.weights, colors[faces[frag.face]])
    image.reshape(-1, 3)[frag.pixel] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return image
