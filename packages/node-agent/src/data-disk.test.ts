import { describe, expect, it } from 'vitest';
import { dataDisk, describeDataDisk, isJournalLessExt4, mountOf, parseMountInfo } from './data-disk.js';

const MOUNTINFO = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard',
  '25 22 0:21 / /sys/fs/cgroup rw,relatime shared:5 - tmpfs tmpfs rw,mode=755',
  '40 22 0:35 / /mnt/fast rw,relatime shared:20 - tmpfs tmpfs rw,size=2097152k',
  '41 22 7:0 / /mnt/with\\040space rw,relatime shared:21 - ext4 /dev/loop0 rw',
  '42 40 7:1 / /mnt/fast/inner rw,relatime shared:22 - xfs /dev/loop1 rw',
  'not a mountinfo line',
].join('\n');

describe('the disk a data directory is on', () => {
  it('finds the innermost mount holding a path, octal escapes undone', () => {
    const mounts = parseMountInfo(MOUNTINFO);
    expect(mounts).toHaveLength(5);
    expect(mountOf(mounts, '/tmp/omega-etcd-x')).toMatchObject({ mountPoint: '/', fsType: 'ext4', source: '/dev/vda' });
    expect(mountOf(mounts, '/mnt/fast')).toMatchObject({ mountPoint: '/mnt/fast', fsType: 'tmpfs' });
    expect(mountOf(mounts, '/mnt/fast/inner/etcd')).toMatchObject({ mountPoint: '/mnt/fast/inner', fsType: 'xfs' });
    expect(mountOf(mounts, '/mnt/fastest')).toMatchObject({ mountPoint: '/' });
    expect(mountOf(mounts, '/mnt/with space/d')).toMatchObject({ mountPoint: '/mnt/with space', source: '/dev/loop0' });
  });

  it('says whether an ext4 disk has a journal, and names the device and mount', () => {
    expect(describeDataDisk({ mountPoint: '/', fsType: 'ext4', source: '/dev/vda', journal: false })).toBe('ext4 without a journal (/dev/vda at /)');
    expect(describeDataDisk({ mountPoint: '/x', fsType: 'ext4', source: '/dev/loop0', journal: true })).toBe('ext4 with a journal (/dev/loop0 at /x)');
    expect(describeDataDisk({ mountPoint: '/x', fsType: 'tmpfs', source: 'tmpfs' })).toBe('tmpfs (at /x)');
    expect(describeDataDisk(undefined)).toBe('file system unknown');
  });

  it('singles out ext4 without a journal, the disk that slows every task start', () => {
    expect(isJournalLessExt4({ mountPoint: '/', fsType: 'ext4', source: '/dev/vda', journal: false })).toBe(true);
    expect(isJournalLessExt4({ mountPoint: '/', fsType: 'ext4', source: '/dev/vda', journal: true })).toBe(false);
    // Unknown (no /proc/fs/jbd2, no /proc/fs/ext4): not claimed either way.
    expect(isJournalLessExt4({ mountPoint: '/', fsType: 'ext4', source: '/dev/vda' })).toBe(false);
    expect(isJournalLessExt4({ mountPoint: '/x', fsType: 'xfs', source: '/dev/loop0' })).toBe(false);
    expect(isJournalLessExt4(undefined)).toBe(false);
  });

  it('describes the disk of this process\'s working directory from the live mount table', () => {
    const disk = dataDisk(process.cwd());
    // Linux always has a mount at / that holds the working directory.
    expect(disk?.mountPoint).toBeDefined();
    expect(process.cwd().startsWith(disk?.mountPoint ?? '\0')).toBe(true);
    expect(disk?.fsType).toMatch(/^[a-z0-9_.]+$/);
  });
});
