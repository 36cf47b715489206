// Rendering and case sampling of the synthetic chest X-rays. Plain float buffers (no ATen per
// pixel) so thousands of images render in seconds; geometry lives in a canonical [0, 1]^2 frame (u
// to the image right, v down; image left is the patient's right) that the case's positioning maps
// onto the pixels.

#include <convirt/core/check.h>
#include <convirt/data/synthetic/generator.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace convirt::data::synthetic {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Deterministic uniform and normal draws (std distributions differ between standard libraries).
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t s) : state(detail::mix64(s)) {}
  uint64_t next() { return state = detail::mix64(state); }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  bool bernoulli(double p) { return uniform() < p; }
  int64_t below(int64_t n) {
    return static_cast<int64_t>(detail::bounded(next(), static_cast<uint64_t>(n)));
  }
  double normal() {
    double u1 = std::max(uniform(), 1e-12), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
  }
};

double smoothstep(double e0, double e1, double x) {
  double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

// A line segment with a Gaussian cross-section.
struct Seg {
  double x0, y0, x1, y1, w, amp;
  double eval(double u, double v) const {
    double dx = x1 - x0, dy = y1 - y0;
    double t = std::clamp(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0);
    double ex = u - (x0 + t * dx), ey = v - (y0 + t * dy);
    double d2 = (ex * ex + ey * ey) / (w * w);
    return d2 > 9.0 ? 0.0 : amp * std::exp(-d2);
  }
};

struct Blob {
  double x, y, rx, ry, amp, wobble, phase;
  double eval(double u, double v) const {
    double du = (u - x) / rx, dv = (v - y) / ry;
    if (std::abs(du) > 1.3 || std::abs(dv) > 1.3) return 0.0;
    double r = std::sqrt(du * du + dv * dv);
    double edge = 1.0 + wobble * std::sin(5 * std::atan2(dv, du) + phase);
    return amp * (1.0 - smoothstep(0.6 * edge, 1.0 * edge, r));
  }
};

struct Lung {
  double cx, cy, rx, ry, dome;  // ellipse, and the diaphragm's height at the dome's top
  double diaphragm(double u) const {
    double t = (u - cx) / rx;
    return dome + 0.07 * t * t;  // dome highest in the middle, lowest laterally: sharp CP angle
  }
  double radius(double u, double v) const {
    double du = (u - cx) / rx, dv = (v - cy) / ry;
    return std::sqrt(du * du + dv * dv);
  }
  double mask(double u, double v) const {
    return (1.0 - smoothstep(0.96, 1.0, radius(u, v))) *
           (1.0 - smoothstep(-0.006, 0.006, v - diaphragm(u)));
  }
};

struct Scene {
  bool lateral = false;
  Lung lungs[2];  // [0] patient's right (image left), [1] patient's left
  double heart_x, heart_y, heart_rx, heart_ry;
  double contrast;
  // Effusion: fluid height per side (0 = none).
  double fluid[2] = {0, 0};
  // Pneumothorax: rim width per side (0 = none).
  double ptx[2] = {0, 0};
  std::vector<Seg> markings[2];
  std::vector<Seg> bright;   // devices, clavicles, atelectasis, Kerley lines: drawn over everything
  std::vector<Seg> in_lung;  // opacities masked by the lung
  std::vector<Seg> dark_in_lung;
  std::vector<Blob> blobs;          // consolidation / edema haze, masked by the lung
  double box[5] = {0, 0, 0, 0, 0};  // pacemaker x, y, half width, half height, amplitude
  // Ribs: fracture on (side, rib, position) with a gap and a step.
  int frac_side = -1, frac_rib = -1;
  double frac_t = 0, frac_gap = 0, frac_step = 0;
  double rib_amp = 0.06;
};

int side_index(Side s) {
  return s == Side::kLeft ? 1 : 0;
}

Scene build_scene(const Case& c, bool lateral, double difficulty) {
  Rng rng(detail::mix64(c.seed, lateral ? 2 : 1));
  Scene s;
  s.lateral = lateral;
  s.contrast = 1.25 - 0.75 * std::clamp(difficulty, 0.0, 1.0);
  const double bw = c.body_width;
  const auto& F = c.findings;
  auto sev = [&](Finding f) {
    return F[static_cast<size_t>(f)].uncertain ? 0 : F[static_cast<size_t>(f)].severity;
  };
  auto has = [&](Finding f) { return F[static_cast<size_t>(f)].present; };
  const double mag = c.ap_view ? 1.06 : 1.0;  // AP projection magnifies the heart
  if (!lateral) {
    s.lungs[0] = {0.5 - 0.17 * bw, 0.45, 0.15 * bw, 0.33, 0.70};
    s.lungs[1] = {0.5 + 0.17 * bw, 0.46, 0.14 * bw, 0.32, 0.73};
    double ctr = has(Finding::kCardiomegaly) ? 0.56 + 0.05 * sev(Finding::kCardiomegaly) : 0.44;
    s.heart_rx = 0.5 * ctr * 0.62 * bw * mag;
    s.heart_ry = 0.12 * mag * (has(Finding::kCardiomegaly) ? 1.1 : 1.0);
    s.heart_x = 0.52 + 0.25 * s.heart_rx;
    s.heart_y = 0.60;
  } else {
    s.lungs[0] = {0.52, 0.44, 0.27 * bw, 0.32, 0.72};
    s.lungs[1] = s.lungs[0];
    double size = has(Finding::kCardiomegaly) ? 1.25 + 0.12 * sev(Finding::kCardiomegaly) : 1.0;
    s.heart_rx = 0.12 * size * mag;
    s.heart_ry = 0.13 * size * mag;
    s.heart_x = 0.36;
    s.heart_y = 0.62;
  }
  const int nsides = lateral ? 1 : 2;
  auto sides_of = [&](const FindingState& f) {
    std::vector<int> out;
    if (lateral) return std::vector<int>{0};
    if (f.side == Side::kBilateral) return std::vector<int>{0, 1};
    out.push_back(side_index(f.side));
    return out;
  };
  // Vessel markings radiating from each hilum.
  for (int k = 0; k < nsides; ++k) {
    const Lung& L = s.lungs[k];
    double hx = lateral ? 0.5 : (k == 0 ? 0.5 - 0.08 * bw : 0.5 + 0.08 * bw), hy = 0.47;
    for (int m = 0; m < 14; ++m) {
      double a = rng.uniform(-0.9 * kPi, 0.9 * kPi * 0.4);  // mostly upward and lateral
      double dir = lateral ? (rng.bernoulli(0.5) ? 1 : -1) : (k == 0 ? -1 : 1);
      double len = rng.uniform(0.12, 0.26);
      double ex = hx + dir * std::cos(a) * len * (L.rx / 0.15), ey = hy + std::sin(a) * len;
      s.markings[k].push_back({hx, hy, ex, ey, 0.005, 0.045 * rng.uniform(0.7, 1.2)});
    }
  }
  const double C = s.contrast;
  // Effusion: fluid at the base, meniscus higher laterally.
  if (has(Finding::kPleuralEffusion)) {
    for (int k : sides_of(F[static_cast<size_t>(Finding::kPleuralEffusion)])) {
      s.fluid[k] = std::array<double, 3>{0.07, 0.12, 0.19}[sev(Finding::kPleuralEffusion)] *
                   (0.8 + 0.4 * C / 1.25);
    }
  }
  if (has(Finding::kPneumothorax)) {
    for (int k : sides_of(F[static_cast<size_t>(Finding::kPneumothorax)])) {
      s.ptx[k] = std::array<double, 3>{0.12, 0.2, 0.3}[sev(Finding::kPneumothorax)];
    }
  }
  if (has(Finding::kEdema)) {
    double amp = (0.10 + 0.05 * sev(Finding::kEdema)) * C;
    for (int k = 0; k < nsides; ++k) {
      const Lung& L = s.lungs[k];
      double hx = lateral ? 0.5 : (k == 0 ? L.cx + 0.35 * L.rx : L.cx - 0.35 * L.rx);
      s.blobs.push_back(
          {hx, 0.48, 0.55 * L.rx + 0.02 * sev(Finding::kEdema), 0.16, amp, 0.1, rng.uniform(0, 6)});
      // Kerley B lines: short horizontal lines at the lateral bases.
      for (int m = 0; m < 3 + sev(Finding::kEdema); ++m) {
        double x = lateral ? L.cx + L.rx * 0.7 : (k == 0 ? L.cx - 0.8 * L.rx : L.cx + 0.8 * L.rx);
        double y = L.dome - 0.02 - 0.025 * m;
        double d = (k == 0 ? 1 : -1) * 0.04;
        s.in_lung.push_back({x, y, x + d, y, 0.004, 0.12 * C});
      }
    }
  }
  if (has(Finding::kAtelectasis)) {
    const auto& f = F[static_cast<size_t>(Finding::kAtelectasis)];
    for (int k : sides_of(f)) {
      const Lung& L = s.lungs[k];
      double y = L.dome - 0.06 - 0.06 * f.position;
      double half = 0.45 * L.rx * (0.8 + 0.2 * sev(Finding::kAtelectasis));
      double tilt = rng.uniform(-0.03, 0.03);
      s.in_lung.push_back({L.cx - half, y - tilt, L.cx + half, y + tilt,
                           0.008 + 0.004 * sev(Finding::kAtelectasis), 0.30 * C});
    }
  }
  if (has(Finding::kPneumonia)) {
    const auto& f = F[static_cast<size_t>(Finding::kPneumonia)];
    for (int k : sides_of(f)) {
      const Lung& L = s.lungs[k];
      double zone = std::array<double, 3>{0.28, 0.45,
                                          0.6}[std::clamp(static_cast<int>(f.position * 3), 0, 2)];
      double r = 0.05 + 0.02 * sev(Finding::kPneumonia);
      double x = L.cx + (lateral ? 0.0 : (k == 0 ? -0.25 : 0.25) * L.rx);
      s.blobs.push_back({x, zone, r, r * 1.1, 0.30 * C, 0.18, rng.uniform(0, 6)});
      // Air bronchograms: dark branching lines inside the consolidation.
      s.dark_in_lung.push_back(
          {x - 0.5 * r, zone - 0.3 * r, x + 0.4 * r, zone + 0.2 * r, 0.004, 0.08 * C});
      s.dark_in_lung.push_back(
          {x - 0.3 * r, zone + 0.4 * r, x + 0.3 * r, zone - 0.1 * r, 0.004, 0.07 * C});
    }
  }
  if (has(Finding::kFracture) && !lateral) {
    const auto& f = F[static_cast<size_t>(Finding::kFracture)];
    s.frac_side = f.side == Side::kLeft ? 1 : 0;
    s.frac_rib = 2 + static_cast<int>(f.position * 5.99);
    s.frac_t = rng.uniform(0.45, 0.8);
    s.frac_gap = 0.018 + 0.008 * sev(Finding::kFracture);
    s.frac_step = (0.008 + 0.004 * sev(Finding::kFracture)) * C;
  }
  s.rib_amp = 0.065 * (0.9 + 0.2 * C / 1.25);
  // Clavicles (frontal) and support devices (distractors).
  if (!lateral) {
    s.bright.push_back({0.5 - 0.05, 0.17, 0.5 - 0.30 * bw, 0.12, 0.012, 0.10});
    s.bright.push_back({0.5 + 0.05, 0.17, 0.5 + 0.30 * bw, 0.12, 0.012, 0.10});
  }
  if (c.device == 0) s.bright.push_back({0.5, 0.0, 0.5, 0.34, 0.006, 0.35});
  if (c.device == 1) {
    s.bright.push_back({0.24, 0.16, 0.44, 0.24, 0.004, 0.32});
    s.bright.push_back({0.44, 0.24, 0.47, 0.36, 0.004, 0.32});
  }
  if (c.device == 2) {
    double bx = lateral ? 0.25 : 0.74, by = 0.2;
    s.box[0] = bx, s.box[1] = by, s.box[2] = 0.04, s.box[3] = 0.028, s.box[4] = 0.45;
    s.bright.push_back({bx, by, 0.52, 0.45, 0.004, 0.3});
    s.bright.push_back({0.52, 0.45, 0.50, 0.66, 0.004, 0.3});
  }
  return s;
}

double body_half_width(double v, double bw, bool lateral) {
  if (v < 0.05) return 0.0;
  double shoulders = lateral ? 0.30 : 0.47 * bw;
  double neck = 0.09;
  double t = smoothstep(0.05, 0.16, v);
  return neck + (shoulders - neck) * t;
}

double intensity(const Scene& s, const Case& c, double u, double v) {
  const bool lat = s.lateral;
  const double bw = c.body_width;
  double body = 1.0 - smoothstep(-0.01, 0.01, std::abs(u - 0.5) - body_half_width(v, bw, lat));
  double val = 0.03 + 0.40 * body;
  // Spine / mediastinum.
  if (!lat) {
    val += 0.16 * body * (1.0 - smoothstep(0.055, 0.075, std::abs(u - 0.5)));
  } else {
    val += 0.18 * body * (1.0 - smoothstep(0.06, 0.08, std::abs(u - 0.82)));
  }
  const int k = lat ? 0 : (u < 0.5 ? 0 : 1);
  const Lung& L = s.lungs[k];
  double lung = L.mask(u, v) * body;
  // Effusion replaces air with fluid below a meniscus that climbs laterally.
  double fluid = 0;
  if (s.fluid[k] > 0) {
    double lateral_t = std::clamp(std::abs(u - L.cx) / L.rx, 0.0, 1.0);
    if (lat) lateral_t = std::clamp((u - L.cx) / L.rx, 0.0, 1.0);
    double level = L.diaphragm(u) - s.fluid[k] * (0.55 + 0.6 * lateral_t);
    fluid = smoothstep(level - 0.01, level + 0.01, v);
  }
  // Pneumothorax: a rim of the upper-lateral lung without markings, bounded by a pleural line.
  double ptx = 0, pleural_line = 0;
  if (s.ptx[k] > 0) {
    double r = L.radius(u, v);
    double inner = 1.0 - s.ptx[k];
    double upper = 1.0 - smoothstep(L.cy, L.cy + 0.12, v);
    ptx = smoothstep(inner - 0.01, inner + 0.01, r) * upper;
    double e = (r - inner) / 0.012;
    pleural_line = std::exp(-e * e) * upper;
  }
  double air = lung * (1.0 - fluid);
  val -= 0.30 * air + 0.05 * air * ptx * s.contrast;
  val += 0.10 * s.contrast * pleural_line * lung;
  // Lung markings, absent where the lung has collapsed away (pneumothorax).
  double marks = 0;
  for (const auto& m : s.markings[k]) marks = std::max(marks, m.eval(u, v));
  val += marks * air * (1.0 - ptx);
  // Heart.
  {
    double du = (u - s.heart_x) / s.heart_rx, dv = (v - s.heart_y) / s.heart_ry;
    double h = 1.0 - smoothstep(0.95, 1.05, std::sqrt(du * du + dv * dv));
    val += 0.28 * h * body * (lung > 0.1 ? 1.0 : 0.6);
  }
  // Opacities within the lung.
  double op = 0;
  for (const auto& b : s.blobs) op = std::max(op, b.eval(u, v));
  for (const auto& sg : s.in_lung) op = std::max(op, sg.eval(u, v));
  double dark = 0;
  for (const auto& sg : s.dark_in_lung) dark = std::max(dark, sg.eval(u, v));
  val += (op - dark * (op > 0.05 ? 1.0 : 0.0)) * lung;
  // Ribs: posterior arcs sloping down laterally; a fracture is a gap with a displaced segment.
  if (!lat) {
    double t = std::abs(u - 0.5) / (0.42 * bw);
    if (t > 0.1 && t < 1.0) {
      double rib = 0;
      for (int r = 0; r < 9; ++r) {
        double base = 0.15 + r * 0.062;
        double y = base + 0.11 * t - 0.05 * t * t;
        double amp = 1.0;
        if (k == s.frac_side && r == s.frac_rib) {
          if (std::abs(t - s.frac_t) < s.frac_gap / (0.42 * bw)) amp = 0.0;
          if (t > s.frac_t) y += s.frac_step;
        }
        double e = (v - y) / 0.010;
        if (e * e < 9.0) rib = std::max(rib, amp * std::exp(-e * e));
      }
      val += s.rib_amp * rib * body * smoothstep(0.1, 0.16, t);
    }
  }
  double over = 0;
  for (const auto& sg : s.bright) over = std::max(over, sg.eval(u, v));
  val += over;
  if (s.box[4] > 0 && std::abs(u - s.box[0]) < s.box[2] && std::abs(v - s.box[1]) < s.box[3])
    val += s.box[4];
  return val;
}

}  // namespace

std::vector<std::string> finding_names() {
  return {"Atelectasis",      "Cardiomegaly", "Edema",       "Fracture",
          "Pleural Effusion", "Pneumonia",    "Pneumothorax"};
}

bool Case::any() const {
  for (const auto& f : findings) {
    if (f.present) return true;
  }
  return false;
}

Case sample_case(const SyntheticOptions& o, uint64_t seed, int only) {
  CONVIRT_CHECK_VALUE(only >= -1 && only <= kNumFindings, "sample_case: only must be in [-1, ",
                      kNumFindings, "], got ", only);
  Rng rng(seed);
  Case c;
  c.seed = rng.next();
  const double p = std::clamp(o.prevalence(), 0.0, 1.0);
  for (int f = 0; f < kNumFindings; ++f) {
    auto& st = c.findings[static_cast<size_t>(f)];
    st.present = only == -1 ? rng.bernoulli(p) : only == f;
    double side = rng.uniform();
    st.side = side < 0.45 ? Side::kRight : side < 0.9 ? Side::kLeft : Side::kBilateral;
    st.severity = static_cast<int>(rng.below(3));
    st.position = rng.uniform();
  }
  if (only == -1) {
    // Physiology: heart failure brings edema and effusions together with a large heart.
    if (c[Finding::kCardiomegaly].present && rng.bernoulli(0.3)) c[Finding::kEdema].present = true;
    if (c[Finding::kEdema].present && rng.bernoulli(0.3)) {
      c[Finding::kPleuralEffusion].present = true;
      c[Finding::kPleuralEffusion].side = Side::kBilateral;
    }
    for (auto& st : c.findings) st.uncertain = st.present && rng.bernoulli(o.uncertain_fraction());
  }
  c[Finding::kEdema].side = Side::kBilateral;  // edema is bilateral by nature
  c[Finding::kCardiomegaly].side = Side::kBilateral;
  if (c[Finding::kFracture].side == Side::kBilateral) c[Finding::kFracture].side = Side::kLeft;
  if (c[Finding::kPneumothorax].side == Side::kBilateral)
    c[Finding::kPneumothorax].side = Side::kRight;
  if (c[Finding::kPneumonia].side == Side::kBilateral && rng.bernoulli(0.5))
    c[Finding::kPneumonia].side = Side::kRight;
  const double d = std::clamp(o.difficulty(), 0.0, 1.0);
  c.device = rng.bernoulli(o.device_fraction()) ? static_cast<int>(rng.below(3)) : -1;
  c.ap_view = rng.bernoulli(c.device >= 0 ? 0.7 : 0.25);
  c.female = rng.bernoulli(0.5);
  c.age = 20 + static_cast<int>(rng.below(70));
  c.rotation_deg = rng.uniform(-1, 1) * (2.0 + 6.0 * d);
  c.shift_x = rng.uniform(-1, 1) * (0.01 + 0.04 * d);
  c.shift_y = rng.uniform(-1, 1) * (0.01 + 0.04 * d);
  c.scale = 1.0 + rng.uniform(-1, 1) * (0.02 + 0.06 * d);
  c.body_width = rng.uniform(0.92, 1.06) * (c.female ? 0.97 : 1.0);
  c.exposure = 1.0 + rng.uniform(-1, 1) * (0.05 + 0.15 * d);
  return c;
}

at::Tensor render(const Case& c, int64_t size, bool lateral, double difficulty) {
  CONVIRT_CHECK_VALUE(size >= 32, "render: size must be >= 32, got ", size);
  const Scene s = build_scene(c, lateral, difficulty);
  const double d = std::clamp(difficulty, 0.0, 1.0);
  const double th = c.rotation_deg * kPi / 180.0, ct = std::cos(th), st = std::sin(th);
  auto out = at::empty({1, size, size}, at::kFloat);
  float* px = out.data_ptr<float>();
  Rng noise(detail::mix64(c.seed, lateral ? 20 : 10));
  const double sigma = 0.008 + 0.035 * d;
  const double grad = noise.uniform(-1, 1) * (0.03 + 0.07 * d);
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      // Pixel centre -> canonical frame through the inverse of the positioning transform.
      double px_u = (x + 0.5) / size - 0.5 - c.shift_x, px_v = (y + 0.5) / size - 0.5 - c.shift_y;
      double u = (ct * px_u + st * px_v) / c.scale + 0.5;
      double v = (-st * px_u + ct * px_v) / c.scale + 0.5;
      double val = intensity(s, c, u, v);
      val =
          val * c.exposure + grad * (static_cast<double>(x) / size - 0.5) + sigma * noise.normal();
      px[y * size + x] = static_cast<float>(std::clamp(val, 0.0, 1.0));
    }
  }
  return out;
}

}  // namespace convirt::data::synthetic
