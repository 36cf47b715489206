// Dataset readers on fixtures written in each dataset's real layout, the loader's determinism,
// sharding and resume, label-fraction subsets, bad-sample handling and the synthetic generator.

#include <convirt/data/csv.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/covidx.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/data/datasets/mimic_cxr.h>
#include <convirt/data/datasets/mura.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/datasets/rsna.h>
#include <convirt/data/loader.h>
#include <convirt/data/subsets.h>
#include <convirt/data/synthetic/generator.h>
#include <convirt/image/io.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "test_util.h"

namespace fs = std::filesystem;
using namespace convirt::data;
using convirt::test::TempDir;

namespace {

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// A small gray image whose mean encodes `value`, so tests can tell which file a sample came from.
void write_image(const fs::path& p, float value, int size = 16) {
  fs::create_directories(p.parent_path());
  convirt::image::write_png(p.string(), torch::full({1, size, size}, value));
}

const char* kReport =
    "                                 FINAL REPORT\n"
    " INDICATION:  Cough with fever today.\n \n"
    " FINDINGS:\n \n There is a small left pleural effusion. The heart size is normal.\n \n"
    " IMPRESSION:\n \n Small left pleural effusion.\n";

// MIMIC-CXR-JPG fixture: study 1 has two views (PA + LATERAL), study 2 one AP view, study 3 a
// report too short, study 4 no report file, study 5 invalid UTF-8, study 6 (validate split) one PA
// view.
fs::path write_mimic(const TempDir& tmp) {
  fs::path root = tmp / "mimic";
  std::string meta = "dicom_id,subject_id,study_id,ViewPosition\n";
  std::string split = "dicom_id,study_id,subject_id,split\n";
  auto add = [&](const std::string& dicom, const std::string& subject, const std::string& study,
                 const std::string& view, const std::string& sp, float value) {
    meta += dicom + "," + subject + "," + study + "," + view + "\n";
    split += dicom + "," + study + "," + subject + "," + sp + "\n";
    write_image(root / mimic_study_dir(subject, study) / (dicom + ".png"), value);
  };
  add("d1a", "10000001", "50000001", "PA", "train", 0.1f);
  add("d1b", "10000001", "50000001", "LATERAL", "train", 0.2f);
  add("d2", "10000002", "50000002", "AP", "train", 0.3f);
  add("d3", "10000003", "50000003", "PA", "train", 0.4f);
  add("d4", "10000004", "50000004", "PA", "train", 0.5f);
  add("d5", "10000005", "50000005", "PA", "train", 0.6f);
  add("d6", "10000006", "50000006", "PA", "validate", 0.7f);
  write_text(root / "mimic-cxr-2.0.0-metadata.csv", meta);
  write_text(root / "mimic-cxr-2.0.0-split.csv", split);
  write_text(root / (mimic_study_dir("10000001", "50000001") + ".txt"), kReport);
  write_text(root / (mimic_study_dir("10000002", "50000002") + ".txt"),
             "FINDINGS: Lungs are clear. No pneumothorax.\nIMPRESSION: No acute process.");
  write_text(root / (mimic_study_dir("10000003", "50000003") + ".txt"), "IMPRESSION: Unchanged.");
  write_text(root / (mimic_study_dir("10000005", "50000005") + ".txt"),
             std::string("FINDINGS: Bad \xff\xfe bytes in this report.\n"));
  write_text(root / (mimic_study_dir("10000006", "50000006") + ".txt"), kReport);
  return root;
}

}  // namespace

TEST_CASE("CSV parser handles quotes, CRLF, a BOM and rows of any width", "[data]") {
  auto rows = parse_csv(
      "\xEF\xBB\xBF"
      "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\r\n\n1,\"multi\nline\",3");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == std::vector<std::string>{"a", "b", "c"});
  CHECK(rows[1] == std::vector<std::string>{"x, y", "say \"hi\"", ""});
  CHECK(rows[2][1] == "multi\nline");
  CHECK(parse_csv(csv_line({"p,q", "r\"s", "t"}) + "\n")[0] ==
        std::vector<std::string>{"p,q", "r\"s", "t"});
  TempDir tmp("convirt-data");
  write_text(tmp / "t.csv", "A,B\n1,\n");
  auto t = read_csv((tmp / "t.csv").string());
  CHECK(t.get(0, "B").empty());
  CHECK_THROWS_AS(t.require_column("C"), c10::ValueError);
  CHECK_THROWS_AS(read_csv((tmp / "missing.csv").string()), c10::ValueError);
}

TEST_CASE("CSV reader refuses ragged rows and invalid UTF-8, or skips and counts them",
          "[data][csv]") {
  using Catch::Matchers::Contains;
  TempDir tmp("convirt-data");
  const auto path = (tmp / "t.csv").string();
  // A newline inside a quoted field is not a ragged row, and the line numbers count it.
  write_text(tmp / "t.csv", "A,B,C\n1,\"x\ny\",3\n\n4,5,6\n");
  auto ok = read_csv(path);
  REQUIRE(ok.rows.size() == 2);
  CHECK(ok.rows[0][1] == "x\ny");
  CHECK(ok.lines == std::vector<int64_t>{2, 5});
  CHECK(ok.where(1) == path + " line 5");
  CHECK(ok.skipped.empty());

  write_text(tmp / "t.csv", "A,B,C\n1,2,3\n\"a,\nb\",2\n7,8,9,10\n4,5,6\n");
  CHECK_THROWS_WITH(read_csv(path), Contains(path) && Contains("line 3") &&
                                        Contains("expected 3 fields (the header's), got 2") &&
                                        Contains("skip_bad_rows"));
  CHECK_THROWS_AS(read_csv(path), c10::ValueError);
  auto skipped = read_csv(path, CsvOptions().skip_bad_rows(true));
  REQUIRE(skipped.rows.size() == 2);
  CHECK(skipped.rows[1] == std::vector<std::string>{"4", "5", "6"});
  CHECK(skipped.lines == std::vector<int64_t>{2, 6});
  REQUIRE(skipped.skipped.size() == 2);
  CHECK(skipped.skipped[0].line == 3);
  CHECK(skipped.skipped[1].line == 5);
  CHECK_THAT(skipped.skipped[1].reason,
             Contains("ragged row: expected 3 fields") && Contains("got 4"));

  // 0xFF in the second field of line 3, and an overlong '/' (0xC0 0xAF) on the second line of a
  // quoted field: the error names the line and column of the byte, and the field.
  write_text(tmp / "t.csv",
             "Path,Text\na.png,ok\nb.png,caf\xff\n\"c\xc3\xa9\",\"one\ntwo \xc0\xaf\"\n");
  CHECK_THROWS_WITH(read_csv(path), Contains(path) && Contains("line 3") &&
                                        Contains("invalid UTF-8: byte 0xFF at column 10") &&
                                        Contains("field 2 'Text'"));
  auto utf = read_csv(path, CsvOptions().skip_bad_rows(true));
  REQUIRE(utf.rows.size() == 1);
  REQUIRE(utf.skipped.size() == 2);
  CHECK(utf.skipped[1].line == 5);
  CHECK_THAT(utf.skipped[1].reason, Contains("byte 0xC0 at column 5 (field 2 'Text')"));
  // Valid multi-byte UTF-8 (the é above) is accepted.
  write_text(tmp / "t.csv", "Path,Text\n\xc3\xa9.png,\xe2\x9c\x93 \xf0\x9f\x98\x80\n");
  CHECK(read_csv(path).rows.size() == 1);
  // A bad header is an error even when rows may be skipped.
  write_text(tmp / "t.csv", "Pa\xffth,Text\na,b\n");
  CHECK_THROWS_WITH(read_csv(path, CsvOptions().skip_bad_rows(true)),
                    Contains("line 1: header: invalid UTF-8"));
  // Without a header the first row sets the width.
  write_text(tmp / "t.csv", "a,1\nb\nc,1\n");
  CHECK_THROWS_WITH(read_csv(path, false),
                    Contains("line 2: ragged row: expected 2 fields (the first row's), got 1"));
  CHECK(read_csv(path, CsvOptions().has_header(false).skip_bad_rows(true)).rows.size() == 2);
}

TEST_CASE("Dataset readers refuse bad table rows or skip and count them with skip_bad_rows",
          "[data][csv]") {
  using Catch::Matchers::Contains;
  TempDir tmp("convirt-data");
  for (int i = 0; i < 4; ++i) write_image(tmp / "img" / ("p" + std::to_string(i) + ".png"), 0.5f);
  // CheXpert: a short row and an invalid byte among four good rows.
  const std::string chexpert = (tmp / "chexpert.csv").string();
  write_text(
      chexpert,
      "Path,Frontal/Lateral,Atelectasis,Cardiomegaly,Consolidation,Edema,Pleural Effusion\n"
      "img/p0.png,Frontal,1.0,,,,\nimg/p1.png,Frontal,0.0,,,,\nimg/p2.png,Frontal\n"
      "img/p2.png,Frontal,1.0,,,,\nimg/p3.png,Fr\xffontal,1.0,,,,\nimg/p3.png,Frontal,0.0,,,,\n");
  CHECK_THROWS_WITH(ChexpertDataset(chexpert), Contains("line 4") && Contains("got 2"));
  ChexpertDataset cx(chexpert, ChexpertOptions().skip_bad_rows(true).max_bad_fraction(0.5));
  CHECK(cx.size() == 4);
  const auto bad = cx.skipped().entries();
  REQUIRE(bad.size() == 2);
  CHECK(bad[0].path == chexpert + " line 4");
  CHECK_THAT(bad[0].reason, Contains("ragged row"));
  CHECK(bad[1].path == chexpert + " line 6");
  CHECK_THAT(bad[1].reason, Contains("invalid UTF-8") && Contains("'Frontal/Lateral'"));
  // Skipped rows count against max_bad_fraction: 2 of 6 rows.
  CHECK_THROWS_WITH(ChexpertDataset(chexpert, ChexpertOptions().skip_bad_rows(true)),
                    Contains("too many bad samples (2 of 6"));

  // CSV pairs (pretraining): the row is a skipped pair.
  const std::string pairs = (tmp / "pairs.csv").string();
  write_text(pairs,
             "image,text\nimg/p0.png,FINDINGS: Lungs are clear. No effusion.\n"
             "img/p1.png,FINDINGS: Lungs are clear.,extra\n");
  CHECK_THROWS_WITH(CsvPairsDataset(pairs), Contains("line 3") && Contains("got 3"));
  CsvPairsDataset cp(pairs, CsvPairsOptions().skip_bad_rows(true).max_bad_fraction(-1));
  CHECK(cp.size() == 1);
  CHECK(cp.skipped().count() == 1);

  // RSNA.
  fs::create_directories(tmp / "rsna");
  write_text(tmp / "rsna" / "stage_2_train_labels.csv",
             "patientId,x,y,width,height,Target\npa,,,,,1\npb,,,,\n");
  CHECK_THROWS_WITH(RsnaDataset((tmp / "rsna").string()), Contains("line 3"));
  RsnaDataset rs((tmp / "rsna").string(), RsnaOptions().skip_bad_rows(true).max_bad_fraction(-1));
  CHECK(rs.skipped().count() == 2);  // the ragged row, then pa's missing image

  // COVIDx split file (space separated): a line with one field, and one with 0xFF.
  fs::create_directories(tmp / "covidx" / "train");
  write_image(tmp / "covidx" / "train" / "a.png", 0.1f);
  write_text(tmp / "covidx" / "train.txt", "1 a.png normal src\nbroken\n2 \xff.png normal src\n");
  CHECK_THROWS_WITH(CovidxDataset((tmp / "covidx").string(), "train.txt"),
                    Contains("train.txt line 2") && Contains("ragged line"));
  CovidxDataset cv((tmp / "covidx").string(), "train.txt",
                   CovidxOptions().skip_bad_rows(true).max_bad_fraction(-1));
  CHECK(cv.size() == 1);
  const auto cvbad = cv.skipped().entries();
  REQUIRE(cvbad.size() == 2);
  CHECK_THAT(cvbad[1].reason, Contains("invalid UTF-8: byte 0xFF at column 3"));

  // MURA (headerless tables): a three-field row in a two-field table.
  const fs::path mura = tmp / "mura" / "MURA-v1.1";
  write_image(mura / "train" / "XR_HAND" / "patient1" / "study1_positive" / "image1.png", 0.3f);
  write_text(mura / "train_image_paths.csv",
             "MURA-v1.1/train/XR_HAND/patient1/study1_positive/image1.png\n");
  write_text(mura / "train_labeled_studies.csv",
             "MURA-v1.1/train/XR_HAND/patient1/study1_positive/,1\nMURA-v1.1/x/,1,2\n");
  CHECK_THROWS_WITH(MuraDataset((tmp / "mura").string(), "train"),
                    Contains("train_labeled_studies.csv line 2"));
  MuraDataset mu((tmp / "mura").string(), "train",
                 MuraOptions().skip_bad_rows(true).max_bad_fraction(-1));
  CHECK(mu.size() == 1);
  CHECK(mu.skipped().count() == 1);
}

TEST_CASE("MIMIC-CXR reader: views, sections, skipped studies and per-seed sampling", "[data]") {
  TempDir tmp("convirt-data");
  auto root = write_mimic(tmp);
  MimicCxrDataset ds(root.string(), MimicCxrOptions().max_bad_fraction(1.0).channels(1));
  REQUIRE(ds.size() == 2);  // studies 1 and 2; 3 short, 4 no report, 5 invalid UTF-8; 6 is validate
  CHECK(ds.records()[0].images.size() == 2);
  CHECK(ds.skipped().count() == 3);
  std::set<std::string> reasons;
  for (const auto& b : ds.skipped().entries()) reasons.insert(b.reason);
  CHECK(reasons.count("missing report file") == 1);
  CHECK(reasons.count("invalid UTF-8 in report") == 1);
  CHECK(reasons.count("report text has fewer than 3 tokens") == 1);
  // Only FINDINGS and IMPRESSION sentences are kept.
  for (const auto& s : ds.records()[0].sentences) CHECK(s.find("Cough") == std::string::npos);
  CHECK(ds.records()[0].sentences.size() == 3);
  // Same seed -> same view and sentence; over seeds both views and all sentences appear.
  std::set<std::string> views, texts;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    auto a = ds.get(0, seed), b = ds.get(0, seed);
    CHECK(a.path == b.path);
    CHECK(a.text == b.text);
    CHECK(torch::equal(a.image, b.image));
    views.insert(a.path);
    texts.insert(a.text);
  }
  CHECK(views.size() == 2);
  CHECK(texts.size() == 3);
  auto ex = ds.get(1, 0);
  CHECK(ex.image.sizes() == torch::IntArrayRef({1, 16, 16}));
  CHECK(std::abs(ex.image.mean().item<double>() - 0.3) < 0.01);
  CHECK(ex.patient == "10000002");
  // frontal_only drops the lateral view; the default threshold turns 3 bad studies of 5 into an
  // error.
  MimicCxrDataset frontal(root.string(),
                          MimicCxrOptions().frontal_only(true).max_bad_fraction(1.0));
  CHECK(frontal.records()[0].images.size() == 1);
  CHECK_THROWS_WITH(MimicCxrDataset(root.string()), Catch::Contains("too many bad samples"));
  MimicCxrDataset val(root.string(), MimicCxrOptions().split("validate"));
  CHECK(val.size() == 1);
}

TEST_CASE("CSV pairs reader: inline text, report files, multiple views, missing files", "[data]") {
  TempDir tmp("convirt-data");
  write_image(tmp / "img" / "a.png", 0.25f);
  write_image(tmp / "img" / "b.png", 0.5f);
  write_text(tmp / "reports" / "r1.txt", kReport);
  write_text(tmp / "inline.csv",
             "image,text,patient\n"
             "img/a.png;img/b.png,\"FINDINGS: Heart is enlarged, moderately. IMPRESSION: "
             "Cardiomegaly is seen.\",p1\n"
             "img/missing.png,FINDINGS: No effusion is seen here.,p2\n"
             "img/b.png,,p3\n");
  CsvPairsDataset ds((tmp / "inline.csv").string(), CsvPairsOptions().max_bad_fraction(1.0));
  REQUIRE(ds.size() == 1);
  CHECK(ds.records()[0].images.size() == 2);
  CHECK(ds.records()[0].patient == "p1");
  CHECK(ds.skipped().count() == 2);
  auto ex = ds.get(0, 3);
  CHECK(ex.image.size(0) == 3);  // default channels = 3
  write_text(tmp / "files.csv",
             "image,report_file\nimg/a.png,reports/r1.txt\nimg/b.png,reports/none.txt\n");
  CsvPairsDataset files((tmp / "files.csv").string(), CsvPairsOptions().max_bad_fraction(0.5));
  REQUIRE(files.size() == 1);
  CHECK(files.records()[0].sentences.size() == 3);
  CHECK(files.skipped().entries()[0].reason == "missing report file");
}

TEST_CASE("CheXpert reader: uncertain policies, blanks, groups", "[data]") {
  TempDir tmp("convirt-data");
  fs::path cx = tmp / "CheXpert-v1.0-small";
  std::string header = "Path,Sex,Age,Frontal/Lateral,AP/PA";
  for (const auto& c : chexpert_all_labels()) header += "," + c;
  // Columns: 14 labels in official order; Atelectasis (8) uncertain, Cardiomegaly (2) positive,
  // Consolidation (6) blank, Edema (5) negative, Pleural Effusion (10) uncertain.
  std::string row1 =
      "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Male,50,Frontal,PA";
  std::vector<std::string> v1 = {"", "",     "1.0", "",     "", "0.0", "",
                                 "", "-1.0", "",    "-1.0", "", "",    ""};
  for (auto& s : v1) row1 += "," + s;
  std::string row2 =
      "CheXpert-v1.0-small/train/patient00002/study3/view2_lateral.jpg,Female,40,Lateral,";
  for (int i = 0; i < 14; ++i) row2 += i == 0 ? ",1.0" : ",0.0";
  std::string row3 =
      "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,30,Frontal,AP";
  for (int i = 0; i < 14; ++i) row3 += ",0.0";
  write_text(cx / "train.csv", header + "\n" + row1 + "\n" + row2 + "\n" + row3 + "\n");
  write_image(cx / "train/patient00001/study1/view1_frontal.jpg", 0.5f);
  write_image(cx / "train/patient00002/study3/view2_lateral.jpg", 0.5f);
  const auto csv = (cx / "train.csv").string();
  ChexpertDataset zeros(csv, ChexpertOptions().max_bad_fraction(0.5));
  REQUIRE(zeros.size() == 2);
  CHECK(zeros.skipped().count() == 1);  // patient00003's image is missing
  // Paper order: Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion.
  auto l = zeros.labels();
  CHECK(torch::equal(l[0], torch::tensor({0.f, 1.f, 0.f, 0.f, 0.f})));
  ChexpertDataset ones(csv,
                       ChexpertOptions().uncertain(UncertainPolicy::kOnes).max_bad_fraction(0.5));
  CHECK(torch::equal(ones.labels()[0], torch::tensor({1.f, 1.f, 0.f, 0.f, 1.f})));
  ChexpertDataset ignore(
      csv, ChexpertOptions().uncertain(parse_uncertain_policy("ignore")).max_bad_fraction(0.5));
  auto ex = ignore.get(0, 0);
  CHECK(torch::equal(ex.mask, torch::tensor({0.f, 1.f, 1.f, 1.f, 0.f})));
  CHECK(ex.patient == "patient00001");
  CHECK(ex.study == "patient00001/study1");
  ChexpertDataset blank_masked(csv,
                               ChexpertOptions().blank_is_negative(false).max_bad_fraction(0.5));
  CHECK(blank_masked.get(0, 0).mask[2].item<float>() == 0.f);
  ChexpertDataset frontal(csv, ChexpertOptions().frontal_only(true).max_bad_fraction(0.5));
  CHECK(frontal.size() == 1);
  CHECK_THROWS_AS(parse_uncertain_policy("maybe"), c10::ValueError);
}

TEST_CASE("RSNA reader: DICOM images, one sample per patient", "[data]") {
  TempDir tmp("convirt-data");
  write_text(
      tmp / "stage_2_train_labels.csv",
      "patientId,x,y,width,height,Target\npa,,,,,0\npb,10,10,5,5,1\npb,20,20,5,5,1\npc,,,,,0\n");
  auto px = torch::arange(0, 256, torch::kInt32).reshape({16, 16}).to(torch::kInt16) * 16;
  for (const char* id : {"pa", "pb"}) {
    fs::create_directories(tmp / "stage_2_train_images");
    convirt::image::write_dicom(
        (tmp / "stage_2_train_images" / (std::string(id) + ".dcm")).string(), px,
        convirt::image::WriteDicomOptions().bits_stored(12));
  }
  RsnaDataset ds(tmp.path().string(), RsnaOptions().max_bad_fraction(0.5).channels(1));
  REQUIRE(ds.size() == 2);
  CHECK(ds.skipped().count() == 1);
  CHECK(torch::equal(ds.labels().flatten(), torch::tensor({0.f, 1.f})));
  auto ex = ds.get(1, 0);
  CHECK(ex.image.sizes() == torch::IntArrayRef({1, 16, 16}));
  CHECK(ex.patient == "pb");
}

TEST_CASE("COVIDx reader: split files, classes, bad lines", "[data]") {
  TempDir tmp("convirt-data");
  write_image(tmp / "train" / "a.png", 0.1f);
  write_image(tmp / "train" / "b.png", 0.2f);
  write_image(tmp / "train" / "c.png", 0.3f);
  write_text(
      tmp / "train.txt",
      "1 a.png COVID-19 cohen\n2 b.png pneumonia rsna\n3 c.png normal rsna\n4 d.png normal rsna\n"
      "5 c.png flu rsna\nbroken\n");
  CovidxDataset ds(tmp.path().string(), "train.txt",
                   CovidxOptions().max_bad_fraction(0.6).skip_bad_rows(true));
  REQUIRE(ds.size() == 3);
  CHECK(ds.skipped().count() == 3);
  CHECK(torch::equal(ds.labels().argmax(1), torch::tensor({0, 1, 2}, torch::kLong)));
  CHECK_THROWS_WITH(
      CovidxDataset(tmp.path().string(), "train.txt", CovidxOptions().skip_bad_rows(true)),
      Catch::Contains("too many bad samples"));
  CHECK_THROWS_WITH(CovidxDataset(tmp.path().string(), "train.txt"),
                    Catch::Contains("line 6: ragged line"));
}

TEST_CASE("MURA reader: study labels and patient grouping", "[data]") {
  TempDir tmp("convirt-data");
  fs::path m = tmp / "MURA-v1.1";
  const std::string s1 = "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/";
  const std::string s2 = "MURA-v1.1/valid/XR_WRIST/patient11185/study2_negative/";
  write_text(m / "valid_labeled_studies.csv", s1 + ",1\n" + s2 + ",0\n");
  write_text(m / "valid_image_paths.csv",
             s1 + "image1.png\n" + s1 + "image2.png\n" + s2 + "image1.png\n");
  write_image(tmp / (s1 + "image1.png"), 0.1f);
  write_image(tmp / (s1 + "image2.png"), 0.1f);
  write_image(tmp / (s2 + "image1.png"), 0.1f);
  for (const auto& root : {tmp.path(), m}) {
    MuraDataset ds(root.string(), "valid");
    REQUIRE(ds.size() == 3);
    CHECK(torch::equal(ds.labels().flatten(), torch::tensor({1.f, 1.f, 0.f})));
    auto a = ds.get(0, 0), c = ds.get(2, 0);
    CHECK(a.patient == "XR_WRIST/patient11185");
    CHECK(a.patient == c.patient);
    CHECK(a.study != c.study);
  }
  CHECK_THROWS_AS(MuraDataset(m.string(), "test"), c10::ValueError);
}

TEST_CASE("Retrieval set in the official 8x200 format", "[data]") {
  TempDir tmp("convirt-data");
  std::string header = "Path,Sex,Age,Frontal/Lateral,AP/PA";
  for (const auto& c : chexpert_all_labels()) header += "," + c;
  const auto all = chexpert_all_labels();
  const auto cats = retrieval_categories();
  std::string cand = header + "\n", query = "Variable,Path\n", text = "Variable,Text\n";
  int pid = 1;
  for (size_t k = 0; k < cats.size(); ++k) {
    for (int j = 0; j < 3; ++j, ++pid) {
      std::string rel = "CheXpert-v1.0-small/train/patient" + std::to_string(10000 + pid) +
                        "/study1/view1_frontal.jpg";
      write_image(tmp / rel, 0.1f);
      if (j < 2) {
        cand += rel + ",Male,50,Frontal,PA";
        for (const auto& c : all) cand += c == cats[k] ? ",1.0" : ",0.0";
        cand += "\n";
      } else {
        query += cats[k] + "," + rel + "\n";
      }
    }
    text += cats[k] + ",Some sentence about " + cats[k] + ".\n";
  }
  // A candidate positive for two categories is rejected.
  cand +=
      "CheXpert-v1.0-small/train/patient10001/study1/"
      "view1_frontal.jpg,Male,50,Frontal,PA,1.0,0.0,1.0";
  for (int i = 3; i < 14; ++i) cand += ",0.0";
  cand += "\n";
  write_text(tmp / "8x200" / "image-retrieval" / "candidate.csv", cand);
  write_text(tmp / "8x200" / "image-retrieval" / "query.csv", query);
  write_text(tmp / "8x200" / "text-retrieval" / "query.csv", text);
  RetrievalSet set((tmp / "8x200").string(),
                   RetrievalOptions().image_root(tmp.path().string()).max_bad_fraction(0.1));
  CHECK(set.candidates()->size() == 16);
  CHECK(set.candidates()->skipped().count() == 1);
  CHECK(set.image_queries()->size() == 8);
  CHECK(set.text_candidates() == set.candidates());
  REQUIRE(set.text_queries().size() == 8);
  CHECK(set.text_queries()[3].category == 3);
  CHECK(set.text_queries()[3].category_name == "Fracture");
  CHECK(torch::equal(set.candidates()->labels().argmax(1).slice(0, 0, 4),
                     torch::tensor({0, 0, 1, 1}, torch::kLong)));
}

namespace {

std::shared_ptr<LabeledDataset> numbered_dataset(const TempDir& tmp, int n, int bad_every = 0) {
  std::vector<LabeledRecord> recs;
  for (int i = 0; i < n; ++i) {
    fs::path p = tmp / ("img" + std::to_string(i) + ".png");
    if (bad_every > 0 && i % bad_every == 1) {
      write_text(p, "\x89PNG\r\n\x1a\n truncated");  // corrupt: a PNG signature and nothing valid
    } else {
      write_image(p, static_cast<float>(i) / n, 8);
    }
    recs.push_back(
        {p.string(), {static_cast<float>(i % 2)}, {}, std::to_string(i), std::to_string(i / 2)});
  }
  // A transform with randomness: adds seed-derived noise so content depends on the sample seed.
  ImageTransform tf = [](const at::Tensor& img, uint64_t seed) {
    auto g = at::detail::createCPUGenerator(seed);
    return img + at::rand(img.sizes(), g) * 0.01;
  };
  return std::make_shared<LabeledDataset>(std::move(recs), std::vector<std::string>{"odd"}, tf, 1);
}

std::vector<Batch> drain(Loader& loader) {
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

}  // namespace

TEST_CASE("Loader: same batches for any worker count, reshuffles per epoch", "[data]") {
  TempDir tmp("convirt-data");
  auto ds = numbered_dataset(tmp, 23);
  auto opts = LoaderOptions().batch_size(5).seed(7);
  Loader l0(ds, LoaderOptions(opts).workers(0));
  Loader l3(ds, LoaderOptions(opts).workers(3).prefetch(2));
  auto a = drain(l0), b = drain(l3);
  REQUIRE(a.size() == 5);
  REQUIRE(b.size() == 5);
  std::set<int64_t> seen;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].indices == b[i].indices);
    CHECK(torch::equal(a[i].images, b[i].images));
    CHECK(torch::equal(a[i].labels, b[i].labels));
    CHECK(a[i].step == static_cast<int64_t>(i));
    seen.insert(a[i].indices.begin(), a[i].indices.end());
  }
  CHECK(seen.size() == 23);
  CHECK(a.back().size() == 3);
  CHECK(a[0].images.sizes() == torch::IntArrayRef({5, 1, 8, 8}));
  CHECK(l0.position().epoch == 1);
  auto e1 = drain(l0);
  CHECK(e1[0].indices != a[0].indices);
  CHECK(e1[0].epoch == 1);
  Loader ordered(ds, LoaderOptions().batch_size(10).shuffle(false).drop_last(true).workers(1));
  auto o = drain(ordered);
  REQUIRE(o.size() == 2);
  CHECK(o[1].indices.front() == 10);
}

TEST_CASE("Loader: sharding splits every epoch across ranks", "[data]") {
  TempDir tmp("convirt-data");
  auto ds = numbered_dataset(tmp, 20);
  std::multiset<int64_t> all;
  for (int r = 0; r < 3; ++r) {
    Loader l(ds, LoaderOptions().batch_size(4).seed(1).rank(r).world_size(3).workers(1));
    CHECK(l.samples_per_epoch() == 7);  // ceil(20 / 3), padded by wrapping
    for (auto& b : drain(l)) all.insert(b.indices.begin(), b.indices.end());
  }
  CHECK(all.size() == 21);
  std::set<int64_t> unique(all.begin(), all.end());
  CHECK(unique.size() == 20);
  Loader dropped(ds, LoaderOptions().rank(2).world_size(3).drop_last(true).batch_size(2));
  CHECK(dropped.samples_per_epoch() == 6);
  CHECK_THROWS_AS(Loader(ds, LoaderOptions().rank(3).world_size(3)), c10::ValueError);
}

TEST_CASE("Loader: a saved position resumes exactly", "[data]") {
  TempDir tmp("convirt-data");
  auto ds = numbered_dataset(tmp, 30);
  auto opts = LoaderOptions().batch_size(4).seed(3).workers(2);
  Loader ref(ds, opts);
  std::vector<Batch> stream;
  for (int i = 0; i < 12; ++i) stream.push_back(ref.next_batch());  // crosses into epoch 1
  Loader first(ds, opts);
  for (int i = 0; i < 9; ++i) first.next_batch();
  LoaderPosition pos = first.position();
  CHECK(pos.epoch == 1);
  CHECK(pos.step == 1);
  Loader resumed(ds, LoaderOptions(opts).workers(1));
  resumed.set_position(pos);
  for (int i = 9; i < 12; ++i) {
    auto b = resumed.next_batch();
    CHECK(b.indices == stream[static_cast<size_t>(i)].indices);
    CHECK(torch::equal(b.images, stream[static_cast<size_t>(i)].images));
  }
  CHECK_THROWS_AS(resumed.set_position({0, 100}), c10::ValueError);
}

TEST_CASE("Loader: corrupt and missing images are skipped, counted and reported", "[data]") {
  TempDir tmp("convirt-data");
  auto ds = numbered_dataset(tmp, 20, /*bad_every=*/10);  // images 1 and 11 are corrupt
  fs::remove(tmp / "img5.png");                           // and image 5 is gone
  Loader loader(ds, LoaderOptions().batch_size(20).shuffle(false).max_bad_fraction(0.2).workers(2));
  auto b = loader.next();
  REQUIRE(b);
  CHECK(b->size() == 17);
  CHECK(loader.bad_samples().count() == 3);
  std::set<std::string> reasons;
  for (const auto& e : loader.bad_samples().entries()) reasons.insert(e.reason.substr(0, 10));
  CHECK(reasons.count("missing fi") == 1);
  CHECK(reasons.count("cannot dec") == 1);
  CHECK(loader.bad_samples().summary().find("img5.png") != std::string::npos);
  // Seen again next epoch: not counted twice.
  loader.next();
  loader.next();
  CHECK(loader.bad_samples().count() == 3);
  Loader strict(ds, LoaderOptions().batch_size(20).max_bad_fraction(0.1).workers(0));
  CHECK_THROWS_WITH(strict.next(), Catch::Contains("too many bad samples"));
}

TEST_CASE("Label-fraction subsets are seeded, stratified and keep both classes", "[data]") {
  auto labels = torch::zeros({1000, 2});
  labels.slice(0, 0, 100).select(1, 0).fill_(1);  // 10% positives in column 0
  labels.slice(0, 0, 5).select(1, 1).fill_(1);    // 0.5% positives in column 1
  auto one = label_fraction_indices(labels, 0.01, 0);
  CHECK(one.size() >= 10);
  CHECK(one.size() <= 12);
  auto sub = labels.index_select(0, torch::tensor(one));
  CHECK(sub.select(1, 0).sum().item<float>() >= 1);
  CHECK(sub.select(1, 1).sum().item<float>() >= 1);  // rare label kept
  auto ten = label_fraction_indices(labels, 0.1, 0);
  CHECK(ten.size() >= 100);
  CHECK(ten.size() <= 101);  // +1: the stratum holding column 1's rare positives gets one row
  CHECK(labels.index_select(0, torch::tensor(ten)).select(1, 0).sum().item<float>() ==
        Approx(10).margin(1));
  CHECK(label_fraction_indices(labels, 0.1, 0) == ten);
  CHECK(label_fraction_indices(labels, 0.1, 1) != ten);
  CHECK(label_fraction_indices(labels, 1.0, 0).size() == 1000);
  CHECK_THROWS_AS(label_fraction_indices(labels, 0.0, 0), c10::ValueError);
  std::vector<std::string> groups;
  for (int i = 0; i < 1000; ++i) groups.push_back(std::to_string(i / 4));
  auto [train, val] = stratified_split(labels, 0.8, 0, groups);
  CHECK(train.size() + val.size() == 1000);
  std::set<std::string> tg, vg;
  for (auto i : train) tg.insert(groups[static_cast<size_t>(i)]);
  for (auto i : val) CHECK(tg.count(groups[static_cast<size_t>(i)]) == 0);
  TempDir tmp("convirt-data");
  auto ds = numbered_dataset(tmp, 40);
  auto half = label_fraction_subset(ds, 0.5, 0);
  CHECK(half->size() == 20);
  CHECK(half->labels().sum().item<float>() == 10);
  CHECK(half->get(0, 0).index == 0);
}

TEST_CASE("Synthetic generator: findings are visible and deterministic", "[data][synthetic]") {
  using namespace convirt::data::synthetic;
  auto opts = SyntheticOptions().difficulty(0.2);
  Case base = sample_case(opts, 11, /*only=*/7);
  REQUIRE(!base.any());
  auto normal = render(base, 64, false, 0.2);
  CHECK(torch::equal(normal, render(base, 64, false, 0.2)));
  CHECK(normal.sizes() == torch::IntArrayRef({1, 64, 64}));
  CHECK(normal.min().item<float>() >= 0.f);
  CHECK(normal.max().item<float>() <= 1.f);
  auto with = [&](Finding f, Side side, int severity) {
    Case c = base;
    c[f].present = true;
    c[f].side = side;
    c[f].severity = severity;
    return render(c, 64, false, 0.2);
  };
  // Rows/cols of the canonical frame (no positioning noise at the check's scale: compare regions).
  auto region = [](const torch::Tensor& img, double v0, double v1, double u0, double u1) {
    auto s = img.size(1);
    return img
        .index({0, torch::indexing::Slice(int64_t(v0 * s), int64_t(v1 * s)),
                torch::indexing::Slice(int64_t(u0 * s), int64_t(u1 * s))})
        .mean()
        .item<double>();
  };
  // Cardiomegaly: the lower middle (heart) is brighter; effusion: the base of that lung is
  // brighter; pneumothorax: the upper lateral lung is darker.
  auto cm = with(Finding::kCardiomegaly, Side::kBilateral, 2);
  CHECK(region(cm, 0.5, 0.72, 0.6, 0.75) > region(normal, 0.5, 0.72, 0.6, 0.75) + 0.03);
  auto eff = with(Finding::kPleuralEffusion, Side::kLeft, 2);
  CHECK(region(eff, 0.58, 0.72, 0.62, 0.8) > region(normal, 0.58, 0.72, 0.62, 0.8) + 0.05);
  CHECK(std::abs(region(eff, 0.58, 0.72, 0.2, 0.38) - region(normal, 0.58, 0.72, 0.2, 0.38)) <
        0.01);
  auto ptx = with(Finding::kPneumothorax, Side::kRight, 2);
  CHECK(region(ptx, 0.15, 0.35, 0.18, 0.28) < region(normal, 0.15, 0.35, 0.18, 0.28) - 0.005);
  auto pna = with(Finding::kPneumonia, Side::kRight, 2);
  CHECK((pna - normal).abs().sum().item<double>() > 5.0);
  // Reports state the findings, with negations, in FINDINGS / IMPRESSION.
  Case c = base;
  c[Finding::kPleuralEffusion].present = true;
  c[Finding::kPleuralEffusion].side = Side::kLeft;
  std::vector<double> labels;
  bool mentioned = false;
  for (uint64_t s = 0; s < 20; ++s) {
    auto report = write_report(c, s, &labels);
    mentioned |= report.find("left pleural effusion") != std::string::npos ||
                 report.find("Left pleural effusion") != std::string::npos;
    CHECK(labels[10] == 1.0);      // Pleural Effusion column
    CHECK(std::isnan(labels[0]));  // No Finding blank when a finding is present
  }
  CHECK(mentioned);
  CHECK(text_queries(7, 5, 0).size() == 5);
}

TEST_CASE("Synthetic dataset reads back through every reader and the loader", "[data][synthetic]") {
  using namespace convirt::data::synthetic;
  TempDir tmp("convirt-data");
  auto opts = SyntheticOptions()
                  .train_studies(24)
                  .validate_studies(4)
                  .test_studies(4)
                  .chexpert_train(16)
                  .chexpert_valid(8)
                  .retrieval_candidates(3)
                  .retrieval_image_queries(2)
                  .retrieval_text_queries(5)
                  .image_size(48)
                  .seed(5)
                  .threads(2);
  auto sum = generate(opts, (tmp / "synth").string());
  CHECK(sum.studies == 32);
  CHECK(sum.mimic_images >= 32);
  auto mimic = std::make_shared<MimicCxrDataset>(sum.mimic_root, MimicCxrOptions().split("train"));
  CHECK(mimic->size() == 24);
  CHECK(mimic->skipped().count() == 0);
  Loader loader(mimic, LoaderOptions().batch_size(8).workers(2));
  auto b = loader.next_batch();
  CHECK(b.images.sizes() == torch::IntArrayRef({8, 3, 48, 48}));
  for (const auto& t : b.texts) CHECK(t.size() > 5);
  ChexpertDataset train(sum.chexpert_train_csv,
                        ChexpertOptions().uncertain(UncertainPolicy::kIgnore));
  CHECK(train.size() == 16);
  ChexpertDataset valid(sum.chexpert_valid_csv);
  CHECK(valid.size() == 8);
  RetrievalSet set(sum.retrieval_dir, RetrievalOptions().image_root(sum.chexpert_root));
  CHECK(set.candidates()->size() == 24);
  CHECK(set.image_queries()->size() == 16);
  CHECK(set.text_queries().size() == 40);
  // Same seed, same bytes.
  auto again = generate(opts, (tmp / "again").string());
  auto r1 = convirt::image::read_file_bytes(sum.chexpert_valid_csv);
  auto r2 = convirt::image::read_file_bytes(again.chexpert_valid_csv);
  CHECK(r1 == r2);
}

TEST_CASE("csv_escape quotes a leading byte-order mark so that it survives a re-read",
          "[data][csv]") {
  // Found by fuzz_csv (fuzz/regressions/fuzz_csv): written unquoted as a file's first field, the
  // reader took the field's U+FEFF for the file's BOM and dropped it.
  const std::string field = "\xEF\xBB\xBFname";
  CHECK(csv_escape(field) == "\"" + field + "\"");
  const auto rows = parse_csv(csv_line({field, "x"}) + "\n");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == std::vector<std::string>{field, "x"});
}
