#pragma once
// The `file` source: discovers files by glob, tails them with a per-file read budget (fairness),
// cuts lines, decodes them (decoder.h) and checkpoints per-file offsets only past acknowledged
// batches.
//
// Identity: (device, inode) while a file lives. The fingerprint (first `fingerprint_bytes`) and
// the tail hash (bytes before the checkpointed offset) tell a reused inode from the file a
// checkpoint was taken on (a new file), and recognise a copy made by copytruncate (it continues
// from the offset already read). A renamed file keeps its identity and offset; it is drained
// through its open descriptor and released once quiet; a deleted one too. Files whose path
// vanished while logship was stopped are looked up by inode in their directory and finished
// first. Bytes that can no longer be read are counted (logship_file_abandoned_bytes_total) and
// logged with the path.
#include <sys/stat.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/observe/metrics.h"
#include "agent/pipeline/ack_window.h"
#include "agent/pipeline/component.h"
#include "plugins/sources/file/config.h"
#include "plugins/sources/file/fingerprint.h"

namespace logship {

class InotifyWatcher;

struct EventIdState;

class FileSource : public Source {
 public:
  FileSource(FileSourceConfig cfg, ComponentContext ctx);
  ~FileSource() override;
  awaitable<void> run(Fanout& out) override;

  /// A committed position: offset and the hash of the bytes before it.
  struct Pos {
    uint64_t offset = 0;
    uint64_t tail = 0;
    Fingerprint fp;    ///< of the generation the offset belongs to
    uint32_t gen = 0;  ///< generation on this inode (a rewrite in place starts the next one)
  };

 private:
  struct Tailed;
  struct Saved {
    std::string path;
    uint64_t dev = 0, ino = 0, offset = 0, tail = 0;
    Fingerprint fp;
    int64_t closed_at = 0;  // unix seconds when released; 0 while tracked
    uint64_t owner = 0;     // serial of the Tailed whose window moves it (not persisted)
    uint32_t gen = 0;       // generation of the owner's the entry describes (not persisted)
  };
  /// A generation of a file that was truncated (or lost while stopped): a copy of it made by
  /// copytruncate continues at `offset`.
  struct Retired {
    Fingerprint fp;
    uint64_t offset = 0;
    uint64_t tail = 0;
    std::string path;
    std::chrono::steady_clock::time_point when;
    // The file (inode key) placed by this generation while its checkpoint entry still describes
    // the inode's previous content (a copy rewritten in place): kept until that entry moves to
    // the new generation, so that a restart meanwhile places the copy again (not persisted).
    uint64_t claimed_by = 0;
  };
  using Clock = std::chrono::steady_clock;
  /// A file opened by the inotify reader the moment its name was seen (created in a glob, or
  /// moved out of one): the generation is pinned by the descriptor before it can be rotated
  /// away or its inode reused; the source loop decides it by content (adopt()).
  struct Pin {
    std::string path;
    std::string from;  // the name it was moved from ("" when created)
    int fd = -1;
    struct stat st {};
  };
  /// A generation that was released (rotated out and quiet for rotate_wait): its identity and
  /// read position, so a descriptor on the same inode is told apart from a new file on a
  /// reused inode by content; renamed ones are re-stated to count growth after the release.
  struct Gone {
    Fingerprint fp;
    uint64_t offset = 0;  // read (and emitted) to here
    uint64_t tail = 0;
    std::string path;   // its name at release (empty when deleted)
    uint64_t size = 0;  // size at release, then the size last counted
    uint64_t dev = 0, ino = 0;
    Clock::time_point when;
  };

  void restore();
  void scan(bool startup);
  /// Starts tracking a file that was found (new, restored, or recovered after a rotation while
  /// stopped); false when it cannot be opened.
  bool track(const std::string& path, int fd, const struct stat& st, uint64_t start,
             bool drain_only);
  /// Where a file seen for the first time (or rewritten in place) starts, decided by content:
  /// a retired generation or a live file it is a copy of, else 0 (or its end with read_from:
  /// end at start-up); nullopt while it may be a copy still being written (decided later).
  std::optional<uint64_t> start_for(const std::string& path, int fd, const struct stat& st,
                                    bool startup);
  /// Holds a file open without reading it until decide() places it.
  void hold_undecided(Tailed& f);
  void recover_rotated_while_stopped();
  awaitable<size_t> read_some(Tailed& f, Fanout& out, bool& stopped);
  void check_rotation(Tailed& f);
  /// Remembers a generation (persisted with the checkpoint).
  void retire(Retired r);
  /// The file's first fingerprint bytes no longer match: it was truncated and written again.
  bool prefix_changed(const Tailed& f) const;
  bool reopen(Tailed& f);
  /// Places a file's next read at `start` of its current generation (hashes from the file now).
  void set_position(Tailed& f, uint64_t start);
  /// event_id: the position the next event emitted for `f` starts at.
  void id_position(Tailed& f, EventIdState& ids, uint64_t line_start);
  /// line_start just moved past `bytes`: the tail hash follows from memory.
  void advance_back(Tailed& f, std::string_view bytes);
  /// Closes the files idle the longest until at most `limit` are open.
  void close_idle_files(int limit);
  void restat_closed();
  void abandon(Tailed& f, const char* why);
  void save_locked(uint64_t key, const Saved& s);
  void drop_claims_locked(uint64_t key);
  /// A new acknowledgement window at `sv` and the file's checkpoint entry.
  void start_window(Tailed& f, const Saved& sv);
  std::string serialize_locked() const;
  awaitable<bool> emit(Tailed& f, Fanout& out, EventBatch&& batch, uint64_t end_offset);
  int open_count() const;
  int trim_target() const;
  void on_fs_change(int kind, std::string_view path, std::string_view moved_from);
  bool included(const std::string& path) const;
  /// Decides where an undecided file starts; false while it must still wait.
  bool decide(Tailed& f);
  /// Takes a descriptor opened by the watcher (see Pin).
  void adopt(Pin& p);
  /// The released generation on this inode when `fd` still holds its content.
  const Gone* same_as_gone(uint64_t key, int fd, uint64_t size);
  /// Re-stats released renamed files: growth after the release is counted as abandoned.
  void watch_gone();
  /// Stops tailing a rotated file (its acks are still awaited).
  void release(std::map<uint64_t, std::unique_ptr<Tailed>>::iterator it, const char* why);

  FileSourceConfig cfg_;
  ComponentContext ctx_;
  ComponentMetrics m_;
  Counter& truncations_;
  Counter& abandoned_bytes_;
  Counter& copies_recognised_;
  Counter& abandoned_generations_;
  Gauge& open_files_;
  Gauge& tracked_files_;
  std::map<uint64_t, std::unique_ptr<Tailed>> files_;  // by identity key
  std::vector<std::unique_ptr<Tailed>> released_;      // closed, waiting for their acks
  std::map<uint64_t, Saved> restored_;                 // from the checkpoint, by identity key
  std::vector<Retired> retired_;
  std::set<std::string> not_regular_;  // paths warned about once
  mutable std::mutex state_mu_;
  std::map<uint64_t, Saved> state_;  // what the checkpoint holds (committed positions)
  std::string buf_;
  int open_fds_ = 0;
  bool postponed_ = false;  // a new file awaits a decision: rescan soon
  // inotify wake-ups
  std::unique_ptr<InotifyWatcher> watcher_;
  std::mutex wake_mu_;
  WaitQueue wake_wq_;
  bool woken_ = false;
  bool rescan_ = false;
  std::set<std::string> changed_;
  std::vector<Pin> pins_;
  std::set<std::string> chase_;  // names rotated generations were moved to (they may move on)
  std::map<std::string, std::string> unpinned_;  // name -> first name, of unopened generations
  std::vector<std::pair<std::string, std::string>> lost_;  // (first, last name) never opened
  // source loop only
  std::map<uint64_t, Gone> gone_;
  uint64_t next_serial_ = 1;
  int64_t started_at_ = 0;  // unix seconds
  bool pressure_warned_ = false;
};

}  // namespace logship
