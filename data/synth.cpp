#include "data/synth.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>

#include "data/dataset.h"
#include "data/parallel.h"
#include "tensor/check.h"
#include "tensor/random.h"

namespace fs = std::filesystem;

namespace leuko::data {

const std::vector<std::string>& synth_folders() {
  static const std::vector<std::string> folders{"Benign", "Early", "Pre", "Pro"};
  return folders;
}

std::string synth_file_name(int cls, int64_t index, const std::string& extension) {
  LEUKO_CHECK(cls >= 0 && cls < 4, "synth: class ", cls, " is not in 0..3");
  char num[32];
  std::snprintf(num, sizeof num, "%03lld", static_cast<long long>(index));
  const std::string kind = cls == 0 ? "Benign" : "Malignant-" + synth_folders()[size_t(cls)];
  return "WBC-" + kind + "-" + num + "." + extension;
}

namespace {

uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Rgb {
  float r, g, b;
};

float clamp01(float x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
float smoothstep(float a, float b, float x) {
  const float t = clamp01((x - a) / (b - a));
  return t * t * (3 - 2 * t);
}

// A smooth random field over [0, 1]^2: random values on a (cells + 1)^2 lattice, interpolated
// with smoothstep weights. Few cells: large blotches (coarse chromatin); many: fine grain.
class ValueNoise {
 public:
  ValueNoise(Generator& gen, int cells) : n_(cells), v_(size_t(cells + 1) * size_t(cells + 1)) {
    for (float& x : v_) x = float(gen.uniform());
  }
  float at(float u, float v) const {
    u = clamp01(u) * float(n_);
    v = clamp01(v) * float(n_);
    const int i = std::min(int(u), n_ - 1), j = std::min(int(v), n_ - 1);
    const float fu = smoothstep(0, 1, u - float(i)), fv = smoothstep(0, 1, v - float(j));
    auto g = [&](int a, int b) { return v_[size_t(b) * size_t(n_ + 1) + size_t(a)]; };
    const float top = g(i, j) + (g(i + 1, j) - g(i, j)) * fu;
    const float bottom = g(i, j + 1) + (g(i + 1, j + 1) - g(i, j + 1)) * fu;
    return top + (bottom - top) * fv;
  }

 private:
  int n_;
  std::vector<float> v_;  // (cells + 1, cells + 1)
};

// A star-shaped outline around a centre: radius as a function of the angle.
struct Outline {
  float cx = 0, cy = 0, radius = 0, rotation = 0;
  std::vector<float> amp, phase;  // harmonic k = first_harmonic + i: relative amplitude, phase
  int first_harmonic = 2;
  float indent = 0, indent_angle = 0;  // a kidney's notch: relative depth, direction

  float r(float theta) const {
    float f = 1;
    for (size_t i = 0; i < amp.size(); i++) f += amp[i] * std::cos(float(first_harmonic + int(i)) * theta + phase[i]);
    if (indent > 0) {
      float d = std::remainder(theta - indent_angle, float(2 * M_PI));  // angle to the notch, in [-pi, pi]
      f *= 1 - indent * std::exp(-d * d / (2 * 0.45f * 0.45f));
    }
    return radius * f;
  }
  // Fraction of pixel (x, y) inside the outline, with a one-pixel soft edge (antialiasing).
  float coverage(float x, float y) const {
    const float dx = x - cx, dy = y - cy;
    const float rho = std::sqrt(dx * dx + dy * dy);
    if (rho > radius * 2) return 0;
    return clamp01(r(std::atan2(dy, dx) - rotation) - rho + 0.5f);
  }
  float max_radius() const {
    float m = 1;
    for (float a : amp) m += std::fabs(a);
    return radius * m;
  }
};

struct Canvas {
  int S;
  std::vector<float> px;  // (S, S, 3), 0..255
  explicit Canvas(int s) : S(s), px(size_t(s) * size_t(s) * 3) {}
  float* at(int y, int x) { return &px[(size_t(y) * size_t(S) + size_t(x)) * 3]; }
  void blend(int y, int x, Rgb c, float alpha) {
    float* p = at(y, x);
    p[0] += (c.r - p[0]) * alpha;
    p[1] += (c.g - p[1]) * alpha;
    p[2] += (c.b - p[2]) * alpha;
  }
  // Calls f(y, x) for the pixels of the square of half-side `half` around (cx, cy), clipped.
  template <typename F>
  void around(float cx, float cy, float half, F&& f) {
    const int y0 = std::max(0, int(std::floor(cy - half))), y1 = std::min(S - 1, int(std::ceil(cy + half)));
    const int x0 = std::max(0, int(std::floor(cx - half))), x1 = std::min(S - 1, int(std::ceil(cx + half)));
    for (int y = y0; y <= y1; y++) {
      for (int x = x0; x <= x1; x++) f(y, x);
    }
  }
};

// The morphology of each class (radii as fractions of the image side).
struct Morph {
  float cell_r[2];         // cell radius range
  float nucleus_ratio[2];  // nucleus radius / cell radius
  float irregular;         // outline harmonics' relative amplitude
  int harmonics[2];        // first and last harmonic of the nucleus outline
  float indent[2];         // kidney notch depth range (0: round)
  int chromatin_cells;     // chromatin texture: lattice cells across the nucleus
  float chromatin_amp;     // texture contrast
  int nucleoli[2], vacuoles[2];  // count ranges
  Rgb nucleus;             // stain colour
};

const Morph kMorph[4] = {
    // Benign: hematogone-like
    {{0.14f, 0.20f}, {0.80f, 0.92f}, 0.025f, {2, 3}, {0, 0}, 16, 0.10f, {0, 0}, {0, 0}, {78, 38, 112}},
    // Early
    {{0.16f, 0.23f}, {0.74f, 0.87f}, 0.055f, {2, 4}, {0, 0.10f}, 22, 0.22f, {0, 1}, {0, 1}, {98, 54, 138}},
    // Pre
    {{0.19f, 0.26f}, {0.66f, 0.80f}, 0.050f, {2, 4}, {0.16f, 0.36f}, 11, 0.22f, {0, 1}, {1, 4}, {102, 58, 142}},
    // Pro
    {{0.21f, 0.29f}, {0.68f, 0.82f}, 0.090f, {3, 6}, {0, 0.14f}, 6, 0.32f, {1, 3}, {0, 2}, {110, 64, 150}},
};

}  // namespace

Image synth_image(int cls, int size, uint64_t seed, int64_t index) {
  LEUKO_CHECK(cls >= 0 && cls < 4, "synth: class ", cls, " is not in 0..3");
  LEUKO_CHECK(size >= 16, "synth: image size ", size, " is below 16");
  Generator g(mix(mix(mix(seed) ^ uint64_t(cls)) ^ uint64_t(index)));
  auto U = [&](float lo, float hi) { return lo + (hi - lo) * float(g.uniform()); };
  auto count = [&](const int range[2]) { return range[0] + int(g.below(uint64_t(range[1] - range[0] + 1))); };
  const float S = float(size);
  Canvas c(size);

  // Plasma: a pinkish background with slow shading.
  const Rgb bg{U(224, 240), U(198, 218), U(204, 222)};
  ValueNoise shade(g, 4);
  for (int y = 0; y < size; y++) {
    for (int x = 0; x < size; x++) {
      const float f = 1 + 0.06f * (shade.at(x / S, y / S) - 0.5f);
      float* p = c.at(y, x);
      p[0] = bg.r * f;
      p[1] = bg.g * f;
      p[2] = bg.b * f;
    }
  }

  // Red blood cells: discs with a pale centre (biconcave) and a darker rim.
  const int n_rbc = 6 + int(g.below(10));
  for (int k = 0; k < n_rbc; k++) {
    const float r = S * U(0.075f, 0.115f);
    const float cx = U(-r, S + r), cy = U(-r, S + r);
    const Rgb col{U(200, 222), U(105, 135), U(115, 145)};
    c.around(cx, cy, r + 1, [&](int y, int x) {
      const float d = std::sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
      const float cover = clamp01(r - d + 0.5f);
      if (cover <= 0) return;
      const float t = d / r;
      const float pallor = 0.55f * (1 - smoothstep(0.15f, 0.7f, t));  // pale centre
      const float rim = 1 - 0.07f * smoothstep(0.7f, 0.95f, t);       // darker edge
      const Rgb px{(col.r + (bg.r - col.r) * pallor) * rim, (col.g + (bg.g - col.g) * pallor) * rim,
                   (col.b + (bg.b - col.b) * pallor) * rim};
      c.blend(y, x, px, 0.9f * cover);
    });
  }

  // The white cell: cytoplasm, vacuoles, nucleus with chromatin texture, nucleoli.
  const Morph& m = kMorph[cls];
  const float stain = U(0.9f, 1.1f);  // how strongly this smear took the stain
  Outline cell;
  cell.radius = S * U(m.cell_r[0], m.cell_r[1]);
  cell.cx = S * (0.5f + U(-0.08f, 0.08f));
  cell.cy = S * (0.5f + U(-0.08f, 0.08f));
  cell.rotation = U(0, float(2 * M_PI));
  for (int k = 2; k <= 3; k++) {
    cell.amp.push_back(0.035f * U(0.2f, 1));
    cell.phase.push_back(U(0, float(2 * M_PI)));
  }
  const Rgb cyto{U(178, 198) / stain, U(158, 180) / stain, U(200, 222)};
  c.around(cell.cx, cell.cy, cell.max_radius() + 1, [&](int y, int x) {
    const float a = cell.coverage(float(x), float(y));
    if (a > 0) c.blend(y, x, cyto, 0.95f * a);
  });

  Outline nuc;
  nuc.radius = cell.radius * U(m.nucleus_ratio[0], m.nucleus_ratio[1]);
  const float off = (cell.radius - nuc.radius) * U(0, 0.7f), off_dir = U(0, float(2 * M_PI));
  nuc.cx = cell.cx + off * std::cos(off_dir);
  nuc.cy = cell.cy + off * std::sin(off_dir);
  nuc.rotation = U(0, float(2 * M_PI));
  nuc.first_harmonic = m.harmonics[0];
  for (int k = m.harmonics[0]; k <= m.harmonics[1]; k++) {
    nuc.amp.push_back(m.irregular * U(0.3f, 1));
    nuc.phase.push_back(U(0, float(2 * M_PI)));
  }
  nuc.indent = U(m.indent[0], m.indent[1]);
  nuc.indent_angle = U(0, float(2 * M_PI));

  const int n_vac = count(m.vacuoles);
  for (int k = 0; k < n_vac; k++) {
    const float r = cell.radius * U(0.06f, 0.11f), ang = U(0, float(2 * M_PI)), dist = cell.radius * U(0.55f, 0.85f);
    const float vx = cell.cx + dist * std::cos(ang), vy = cell.cy + dist * std::sin(ang);
    c.around(vx, vy, r + 1, [&](int y, int x) {
      const float d = std::sqrt((x - vx) * (x - vx) + (y - vy) * (y - vy));
      const float a = clamp01(r - d + 0.5f) * cell.coverage(float(x), float(y));
      if (a > 0) c.blend(y, x, Rgb{236, 228, 242}, 0.75f * a);
    });
  }

  ValueNoise chromatin(g, m.chromatin_cells);
  const Rgb base{(m.nucleus.r + U(-10, 10)) / stain, (m.nucleus.g + U(-8, 8)) / stain, (m.nucleus.b + U(-10, 10))};
  const float span = 2 * nuc.max_radius();
  c.around(nuc.cx, nuc.cy, nuc.max_radius() + 1, [&](int y, int x) {
    const float a = nuc.coverage(float(x), float(y));
    if (a <= 0) return;
    const float tex = chromatin.at((x - nuc.cx) / span + 0.5f, (y - nuc.cy) / span + 0.5f);
    const float dark = 1 - m.chromatin_amp * (2 * tex - 1);
    c.blend(y, x, Rgb{base.r * dark, base.g * dark, base.b * dark}, 0.97f * a);
  });

  const int n_nucleoli = count(m.nucleoli);
  for (int k = 0; k < n_nucleoli; k++) {
    const float r = nuc.radius * U(0.10f, 0.17f), ang = U(0, float(2 * M_PI)), dist = nuc.radius * U(0, 0.5f);
    const float nx = nuc.cx + dist * std::cos(ang), ny = nuc.cy + dist * std::sin(ang);
    c.around(nx, ny, r + 1, [&](int y, int x) {
      const float d = std::sqrt((x - nx) * (x - nx) + (y - ny) * (y - ny));
      const float a = clamp01(r - d + 0.5f) * nuc.coverage(float(x), float(y));
      if (a > 0) c.blend(y, x, Rgb{150, 122, 182}, 0.6f * a);
    });
  }

  // Sensor noise, then 8 bits.
  Image img(size, size);
  for (size_t i = 0; i < c.px.size(); i++) {
    const float v = c.px[i] + 3.0f * float(g.normal());
    img.pixels[i] = uint8_t(std::clamp(int(std::lround(v)), 0, 255));
  }
  return img;
}

int64_t write_synth_dataset(const std::string& out, const SynthOptions& o,
                            const std::function<void(int64_t, int64_t)>& progress) {
  LEUKO_CHECK(o.per_class >= 1, "synth: --per-class ", o.per_class, " must be at least 1");
  LEUKO_CHECK(o.format == "jpg" || o.format == "png", "synth: format '", o.format, "' is not jpg or png");
  LEUKO_CHECK(o.quality >= 1 && o.quality <= 100, "synth: JPEG quality ", o.quality, " is not in 1..100");
  LEUKO_CHECK(have_image_codecs(), "synth: this leuko was built without stb (the image codecs)");
  const std::vector<std::string>& folders = synth_folders();
  for (size_t cls = 0; cls < folders.size(); cls++) {
    const fs::path dir = fs::path(out) / folders[cls];
    std::error_code ec;
    fs::create_directories(dir, ec);
    LEUKO_CHECK(!ec && fs::is_directory(dir), "synth: cannot create ", dir.string(), ": ", ec.message());
    // Image files this run will not overwrite would silently join the dataset: refuse.
    std::set<std::string> ours;
    for (int i = 1; i <= o.per_class; i++) ours.insert(synth_file_name(int(cls), i, o.format));
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      LEUKO_CHECK(!is_image_file_name(name) || ours.count(name), "synth: ", entry.path().string(),
                  " exists and would stay in the dataset; write into an empty folder");
    }
  }
  const int64_t total = int64_t(folders.size()) * o.per_class;
  std::mutex mu;
  int64_t done = 0;
  parallel_for(total, o.threads, [&](int64_t t) {
    const int cls = int(t / o.per_class);
    const int64_t index = t % o.per_class + 1;
    const Image img = synth_image(cls, o.size, o.seed, index);
    write_image((fs::path(out) / folders[size_t(cls)] / synth_file_name(cls, index, o.format)).string(), img,
                o.quality);
    std::lock_guard<std::mutex> lock(mu);
    done++;
    if (progress) progress(done, total);
  });
  return total;
}

}  // namespace leuko::data
